import { EventEmitter } from 'node:events';
import type {
  Approver,
  Brain,
  BrainError,
  ChatMessage,
  GenerationOptions,
  ToolCall,
  ToolDefinition,
  TurnEvent,
  TurnUsage,
} from '../brains/types.js';
import type { Config, ModeConfig } from './config.js';
import { billingOf } from './credit/billing.js';
import type { Admission, Budgets } from './credit/budget.js';
import { type CreditMeter, creditSentence } from './credit/meter.js';
import type { Db } from './db/index.js';
import { BrainstemError } from './errors.js';
import { html } from './html.js';
import { formatDuration, type Lang, t } from './i18n.js';
import { detectIntent, guessLang, type Intent } from './intents.js';
import { KeyedLock } from './keyed-lock.js';
import type { Logger } from './logger.js';
import { ACTIVE, type ModeRegistry, stripPrefix } from './modes.js';
import type { Notifier } from './notices.js';
import type { KnownReadiness, ReadinessBoard } from './readiness.js';
import { redactValue, scrubText } from './redact.js';
import { SwitchMarkerFilter } from './switch-marker.js';
import type { Switcher } from './switcher.js';
import { hasAssistant, latestUserWords, newTurnText } from './text.js';
import { collectToolCall } from './tool-calls.js';
import { selectTools, type ToolSelection, toolChoiceRefusal } from './tool-filter.js';
import { addUsage, type Billing, NO_USAGE, type UsageLedger } from './usage.js';
import { usageContext } from './usage-summary.js';

/** Why a turn was cut: brainstem is stopping (pm2 restart, upgrade). */
export class ShutdownError extends Error {
  constructor() {
    super(
      '⚙️ [proxy] brainstem is restarting, so this answer was cut short. Send your message again in a minute.',
    );
    this.name = 'ShutdownError';
  }
}

export interface ChatRequest {
  /** `active`, a mode id or alias, with or without a provider prefix. */
  model: string;
  sessionKey: string;
  messages: ChatMessage[];
  tools?: ToolDefinition[];
  toolChoice?: unknown;
  maxTokens?: number;
  /** Sampling and output controls; a mode whose brain cannot honour one refuses the request. */
  options?: GenerationOptions;
  /** Who asks: recorded in the usage ledger. */
  source: 'openai' | 'telegram' | 'tool';
  lang?: Lang;
  /** Asks a person about tools outside the mode's allow-list; default: the one set by setDefaultApprover. */
  approve?: Approver;
  /** How many brains stand above this turn (see TurnRequest.depth). */
  depth?: number;
}

/** What a face receives: the brain's events, plus the moments a face may want to show. */
export type ChatEvent =
  | TurnEvent
  /** The conversation's previous turn is still running; this one waits. */
  | { type: 'queued' }
  /**
   * The mode that answers, once known (after any pending switch), and the
   * client's tools it keeps from its brain.
   */
  | { type: 'mode'; mode: ModeConfig; filteredTools: string[] };

/**
 * Something else that answers certain words without a brain (tool shortcuts):
 * returns the streamed answer, or undefined when the words are not its own.
 */
export type LocalAnswerer = (
  words: string,
  lang: Lang,
  signal: AbortSignal,
) => AsyncIterable<string> | undefined;

/**
 * brainstem's own tools offered to a local model that got none from its
 * client; the answer loop runs the calls and hands the results back.
 */
export interface LocalToolbox {
  /** OpenAI function definitions of the tools named in `allowed` (`*` = all) that never mutate. */
  definitions(allowed: string[]): ToolDefinition[];
  /** Runs one call; the result (or the error) as text for the model. */
  run(
    name: string,
    args: string,
    ctx: { caller: string; signal: AbortSignal; allowed: string[]; depth: number },
  ): Promise<string>;
}

/** How many tool rounds one answer may take before the model must answer in words. */
const MAX_TOOL_ROUNDS = 5;

export interface StatusLine {
  mode: ModeConfig;
  active: boolean;
  ready: boolean;
  detail: string;
  /** When the readiness shown was measured (undefined: no probe has finished yet). */
  checkedAt?: number;
  /** A probe is running now. */
  checking: boolean;
}

/**
 * The core both faces call: it answers what brainstem answers itself (switch
 * requests, help, status), waits for a running switch, serialises turns of one
 * conversation, streams the brain's events as they come, strips switch markers,
 * and writes every turn to the usage ledger.
 */
export class ChatService extends EventEmitter<{
  brainError: [{ mode: ModeConfig; error: BrainError }];
  /** A turn is in the ledger. */
  turn: [{ mode: ModeConfig; billing?: Billing; costUsd: number }];
}> {
  private readonly lock = new KeyedLock();
  private readonly startedAt = Date.now();
  private readonly answerers: LocalAnswerer[] = [];
  /** Turns running now, so a shutdown can wait for them and then cut them short. */
  private readonly running = new Set<AbortController>();
  private closing = false;
  private defaultApprover?: Approver;
  private readonly insertAudit;

  constructor(
    private readonly deps: {
      config: Config;
      modes: ModeRegistry;
      brains: Map<string, Brain>;
      switcher: Switcher;
      ledger: UsageLedger;
      notifier: Notifier;
      logger: Logger;
      db: Db;
      readiness: ReadinessBoard;
      /** The modes' spending caps. */
      budgets?: Budgets;
      /** The Agent SDK credit, told to the brain when the user asks about consumption. */
      meter?: CreditMeter;
    },
  ) {
    super();
    this.insertAudit = deps.db.prepare(
      'INSERT INTO audit (ts, tool, caller, args, ok, exit_code, duration_ms, error) VALUES (?, ?, ?, ?, ?, NULL, ?, ?)',
    );
  }

  /** The approver of turns that come without one (e.g. through the OpenAI endpoint). */
  setDefaultApprover(approve: Approver | undefined): void {
    this.defaultApprover = approve;
  }

  private toolbox: LocalToolbox | undefined;

  setToolbox(toolbox: LocalToolbox | undefined): void {
    this.toolbox = toolbox;
  }

  addLocalAnswerer(answerer: LocalAnswerer): void {
    this.answerers.push(answerer);
  }

  /** Throws UNKNOWN_MODEL (listing the valid ids) before any streaming starts. */
  resolveMode(model: string): ModeConfig {
    const mode = this.deps.modes.resolveRef(model, () => this.deps.switcher.active());
    if (!mode) {
      throw new BrainstemError(
        'UNKNOWN_MODEL',
        `Unknown model "${model}". Valid models: active, ${this.deps.modes.ids().join(', ')}.`,
        'model',
      );
    }
    return mode;
  }

  /** Validates at once (throwing typed errors), then returns the stream of events. */
  run(req: ChatRequest, signal: AbortSignal): AsyncGenerator<ChatEvent> {
    if (this.closing) throw new BrainstemError('SHUTTING_DOWN');
    const requested = this.resolveMode(req.model);
    const tools = this.check(requested, req);
    const newTurn = newTurnText(req.messages);
    const endsWithToolResult = req.messages.at(-1)?.role === 'tool';
    if (newTurn.trim().length === 0 && !endsWithToolResult) {
      throw new BrainstemError(
        'INVALID_REQUEST',
        'messages: there is no user message to answer.',
        'messages',
      );
    }
    return this.stream(req, requested, tools, newTurn, signal);
  }

  /** Whether a conversation has a turn running or waiting (the bot shows "queued"). */
  busy(mode: string, sessionKey: string): boolean {
    return this.lock.busy(`${mode}\u0000${sessionKey}`);
  }

  private async *stream(
    req: ChatRequest,
    requested: ModeConfig,
    requestedTools: ToolSelection,
    newTurn: string,
    signal: AbortSignal,
  ): AsyncGenerator<ChatEvent> {
    const words = latestUserWords(newTurn);
    const lang = req.lang ?? guessLang(words);
    const intent = words ? detectIntent(words, (n) => this.deps.modes.find(n) !== undefined) : undefined;
    const local = await this.answerLocally(intent, lang);
    if (local !== undefined) {
      yield { type: 'text', text: local };
      yield { type: 'done', finishReason: 'stop' };
      return;
    }
    for (const answerer of this.answerers) {
      const answer = words ? answerer(words, lang, signal) : undefined;
      if (!answer) continue;
      for await (const chunk of answer) yield { type: 'text', text: chunk };
      yield { type: 'done', finishReason: 'stop' };
      return;
    }

    await this.deps.switcher.whenIdle();
    // `active` means the mode active once the switch is over, not the one when the request came in.
    const effective =
      stripPrefix(req.model).toLowerCase() === ACTIVE ? this.deps.switcher.active() : requested;
    const brain = this.deps.brains.get(effective.id);
    if (!brain) throw new Error(`no brain for mode ${effective.id}`);
    // A switch while this request waited may have changed what `active` honours; nothing was sent yet.
    const tools = effective.id === requested.id ? requestedTools : this.check(effective, req);

    const key = `${effective.id}\u0000${req.sessionKey}`;
    if (this.lock.busy(key)) yield { type: 'queued' };
    const release = await this.lock.acquire(key);
    const turn = new AbortController();
    const onAbort = () => turn.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    this.running.add(turn);
    try {
      if (signal.aborted) return;
      yield { type: 'mode', mode: effective, filteredTools: tools.filtered };
      yield* this.relay(brain, effective, req, tools, newTurn, intent?.kind === 'usage', turn.signal);
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.running.delete(turn);
      release();
    }
  }

  /**
   * Throws INVALID_REQUEST naming the first field the mode cannot honour;
   * returns which of the client's tools its brain gets (logging those it does not).
   */
  private check(mode: ModeConfig, req: ChatRequest): ToolSelection {
    const tools = selectTools(mode, req.tools);
    const refusal =
      this.deps.brains.get(mode.id)?.refuse?.({ options: req.options, toolChoice: req.toolChoice }) ??
      toolChoiceRefusal(mode, req.toolChoice, tools);
    if (refusal) {
      throw new BrainstemError('INVALID_REQUEST', `${refusal.message} (model: ${mode.id})`, refusal.param);
    }
    if (tools.filtered.length > 0) {
      this.deps.logger.info(
        { mode: mode.id, tools: tools.filtered, why: tools.why },
        `client tools not given to the brain: ${tools.filtered.join(', ')} (${tools.why})`,
      );
    }
    return tools;
  }

  /**
   * Shutdown: refuse new turns, give running ones `graceMs` to finish, then cut
   * them short (each face tells its user). Resolves when none is left.
   */
  async drain(graceMs: number): Promise<void> {
    this.closing = true;
    this.deps.readiness.stop();
    const deadline = Date.now() + graceMs;
    while (this.running.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (this.running.size === 0) return;
    this.deps.logger.warn({ turns: this.running.size }, 'grace period over: stopping the running turns');
    for (const turn of this.running) turn.abort(new ShutdownError());
    while (this.running.size > 0) await new Promise((r) => setTimeout(r, 20));
  }

  get runningTurns(): number {
    return this.running.size;
  }

  private async *relay(
    brain: Brain,
    mode: ModeConfig,
    req: ChatRequest,
    tools: ToolSelection,
    newTurn: string,
    usageAsked: boolean,
    signal: AbortSignal,
  ): AsyncGenerator<ChatEvent> {
    const started = Date.now();
    const markers = new SwitchMarkerFilter();
    // A tag in front of JSON the client asked for would break it.
    const format = req.options?.response_format?.type;
    let tagPending = this.deps.config.server.modeTag && format !== 'json_object' && format !== 'json_schema';
    let usage: TurnUsage | undefined;
    let brainSessionId: string | undefined;
    let failure: BrainError | undefined;
    const text = (chunk: string): ChatEvent[] => {
      if (!chunk) return [];
      if (tagPending) {
        tagPending = false;
        return [{ type: 'text', text: `**[${mode.id}]** ${chunk}` }];
      }
      return [{ type: 'text', text: chunk }];
    };
    // A local model whose client brought no tools gets brainstem's own read-only ones.
    const offered =
      mode.kind === 'llama' && !req.tools?.length && this.toolbox
        ? this.toolbox.definitions(mode.allowedTools)
        : [];
    let messages = req.messages;
    const lang = req.lang ?? guessLang(latestUserWords(newTurn));
    const admission: Admission = this.deps.budgets?.admit(mode, lang) ?? { ok: true };
    try {
      if (!admission.ok) {
        failure = admission.error;
        this.deps.logger.info({ mode: mode.id, limit: failure.limit }, 'turn refused by a budget');
        yield { type: 'error', error: failure };
        return;
      }
      for (let round = 0; ; round++) {
        const calls: ToolCall[] = [];
        let said = '';
        let runTools = false;
        const events = brain.turn(
          {
            sessionKey: req.sessionKey,
            messages,
            newTurn,
            freshSession: !hasAssistant(messages),
            tools: offered.length > 0 ? offered : tools.offered,
            toolChoice: tools.offered.length > 0 ? req.toolChoice : undefined,
            maxTokens: req.maxTokens,
            options: req.options,
            extraContext: usageAsked ? this.usageContext() : undefined,
            approve: req.approve ?? this.defaultApprover,
            depth: req.depth,
            maxBudgetUsd: admission.maxBudgetUsd,
          },
          signal,
        );
        for await (const ev of events) {
          if (offered.length > 0 && ev.type === 'tool_call') {
            collectToolCall(calls, ev);
            continue;
          }
          if (offered.length > 0 && ev.type === 'done' && calls.length > 0 && round < MAX_TOOL_ROUNDS) {
            runTools = true;
            continue;
          }
          switch (ev.type) {
            case 'text':
              said += ev.text;
              yield* text(markers.push(ev.text));
              break;
            case 'usage':
              usage = addUsage(usage, ev.usage);
              yield ev;
              break;
            case 'session':
              brainSessionId = ev.sessionId;
              yield ev;
              break;
            case 'approval':
              this.auditApproval(ev);
              yield ev;
              break;
            case 'done':
              yield* text(markers.flush());
              yield ev;
              break;
            case 'error': {
              yield* text(markers.flush());
              const cut = signal.reason instanceof ShutdownError;
              failure = cut
                ? { ...ev.error, message: (signal.reason as ShutdownError).message }
                : (this.deps.budgets?.stopped(mode, admission, ev.error, lang) ?? ev.error);
              if (failure.kind === 'auth') {
                // One renewal notice per hour at most, whatever the number of failing turns.
                this.deps.notifier.notify({
                  kind: 'auth',
                  // The brain's message quotes the upstream: plain text, escaped whole.
                  text: html`${failure.message}`,
                  dedupeKey: `auth:${mode.id}:${Math.floor(Date.now() / 3_600_000)}`,
                });
              }
              this.emit('brainError', { mode, error: failure });
              yield { type: 'error', error: failure };
              break;
            }
            default:
              yield ev;
          }
        }
        if (!runTools || !this.toolbox) break;
        const toolbox = this.toolbox;
        yield { type: 'notice', text: `⚙️ [proxy] ${calls.map((c) => `🔧 ${c.function.name}`).join(', ')}` };
        const results = await Promise.all(
          calls.map((c) =>
            toolbox.run(c.function.name, c.function.arguments, {
              caller: `brain:${mode.id}:${req.sessionKey}`.slice(0, 100),
              signal,
              allowed: mode.allowedTools,
              // The model of this turn makes the call: one brain more than above the turn.
              depth: (req.depth ?? 0) + 1,
            }),
          ),
        );
        messages = [
          ...messages,
          { role: 'assistant', content: said || null, tool_calls: calls },
          ...calls.map(
            (c, i): ChatMessage => ({ role: 'tool', tool_call_id: c.id, content: results[i] ?? '' }),
          ),
        ];
      }
    } finally {
      const billing = billingOf(mode, this.deps.config.claude.env);
      const cost = usage ?? NO_USAGE;
      this.deps.ledger.record({
        ts: started,
        mode: mode.id,
        sessionKey: req.sessionKey,
        brainSessionId,
        source: req.source,
        ...cost,
        durationMs: Date.now() - started,
        // A limit says which one: `usage_limit:day_budget: …`.
        error: failure
          ? `${failure.kind}${failure.limit ? `:${failure.limit}` : ''}: ${failure.message}`.slice(0, 500)
          : signal.aborted
            ? 'aborted'
            : undefined,
        billing,
      });
      this.emit('turn', { mode, billing, costUsd: cost.costUsd });
      for (const target of new Set(markers.found)) {
        if (this.deps.modes.find(target)) {
          void this.deps.switcher.switchTo(target, { source: 'marker', by: mode.id, lang: req.lang });
        } else {
          this.deps.logger.warn({ target }, 'ignored [SWITCH] marker naming an unknown mode');
        }
      }
    }
  }

  /** The ledger's figures, and the credit's in one sentence, for the brain. */
  private usageContext(): string {
    const credit = this.deps.meter ? creditSentence(this.deps.meter.reading()) : undefined;
    return usageContext(this.deps.ledger, Date.now(), credit);
  }

  /** Each tool approval decision lands in the audit log, like an infra tool call. */
  private auditApproval(ev: Extract<TurnEvent, { type: 'approval' }>): void {
    const { request: r, decision: d } = ev;
    const args = JSON.stringify(
      redactValue({
        summary: r.summary,
        by: ev.source,
        ...(d.behavior === 'allow' ? { scope: d.scope } : {}),
      }),
    );
    try {
      this.insertAudit.run(
        Date.now() - ev.waitedMs,
        `approval:${r.tool}`.slice(0, 100),
        r.sessionKey.slice(0, 100),
        args,
        d.behavior === 'allow' ? 1 : 0,
        ev.waitedMs,
        d.behavior === 'deny' ? scrubText(d.message).slice(0, 500) : null,
      );
    } catch (err) {
      // The turn matters more than its audit line; the log keeps the trace.
      this.deps.logger.error({ err, tool: r.tool }, 'approval audit write failed');
    }
  }

  private async answerLocally(intent: Intent | undefined, lang: Lang): Promise<string | undefined> {
    switch (intent?.kind) {
      case 'switch': {
        const o = await this.deps.switcher.switchTo(intent.target, { source: 'intent', lang });
        if (!o.ok) return `⚙️ [proxy] ${o.reason}`;
        if (o.alreadyActive)
          return t(lang, `⚙️ [proxy] Already in mode **${o.to}**.`, `⚙️ [proxy] Déjà en mode **${o.to}**.`);
        return t(
          lang,
          `⚙️ [proxy] Switched to **${o.to}** in ${formatDuration(o.ms)}; it is ready.`,
          `⚙️ [proxy] Mode **${o.to}** activé en ${formatDuration(o.ms)} ; il est prêt.`,
        );
      }
      case 'help':
        return this.helpText(lang);
      case 'modes':
        return this.modesText(lang);
      case 'status':
        return this.statusText(lang);
      default:
        return undefined;
    }
  }

  helpText(lang: Lang): string {
    return [
      t(lang, '⚙️ [proxy] brainstem answers these itself:', '⚙️ [proxy] brainstem répond lui-même à :'),
      t(
        lang,
        '- `mode <name>` or "switch to <name>": change the brain',
        '- `mode <nom>` ou « passe en mode <nom> » : changer de cerveau',
      ),
      t(lang, '- `status`: active mode and readiness', '- `statut` : mode actif et disponibilité'),
      t(lang, '- `modes`: the list of modes', '- `modes` : la liste des modes'),
      t(lang, '- `help`: this text', '- `aide` : ce texte'),
      t(lang, 'Anything else goes to the active brain.', 'Tout le reste va au cerveau actif.'),
    ].join('\n');
  }

  modesText(lang: Lang): string {
    const active = this.deps.switcher.active().id;
    const lines = this.deps.modes.all.map(
      (m) =>
        `- ${m.id === active ? `**${m.id}** ←` : m.id} (${m.kind}) ${m.description}${m.aliases.length ? ` [${m.aliases.join(', ')}]` : ''}`,
    );
    return [t(lang, '⚙️ [proxy] Modes:', '⚙️ [proxy] Modes :'), ...lines].join('\n');
  }

  /** Every mode's last known readiness, at once: never waits for a probe (for /health). */
  knownStatus(): StatusLine[] {
    return this.deps.modes.all.map((mode) => this.statusLine(mode, this.deps.readiness.known(mode.id)));
  }

  /**
   * Every mode's readiness from a probe running or started now (shared with
   * any other caller), waiting at most `timeoutMs`; a mode whose probe takes
   * longer shows its last known state.
   */
  async statusLines(timeoutMs = 3000): Promise<StatusLine[]> {
    const board = this.deps.readiness;
    const probes = this.deps.modes.all.map((m) => board.probe(m.id));
    await Promise.race([Promise.all(probes), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    return this.knownStatus();
  }

  private statusLine(mode: ModeConfig, known: KnownReadiness): StatusLine {
    const r = known.result;
    return {
      mode,
      active: mode.id === this.deps.switcher.active().id,
      ready: r?.ok === true,
      detail: !r ? 'checking…' : r.ok ? (r.detail ?? 'ready') : r.reason,
      checkedAt: known.at,
      checking: known.checking,
    };
  }

  async statusText(lang: Lang): Promise<string> {
    const lines = await this.statusLines();
    const body = lines.map(
      (l) => `- ${l.active ? `**${l.mode.id}** ←` : l.mode.id}: ${l.ready ? '✅' : '❌'} ${l.detail}`,
    );
    return [
      t(lang, '⚙️ [proxy] Status', '⚙️ [proxy] Statut'),
      ...body,
      t(
        lang,
        `Uptime: ${formatDuration(Date.now() - this.startedAt)}`,
        `En marche depuis : ${formatDuration(Date.now() - this.startedAt)}`,
      ),
    ].join('\n');
  }
}
