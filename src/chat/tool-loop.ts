import type { Brain, BrainError, ChatMessage, ToolCall, TurnEvent, TurnUsage } from '../../brains/types.js';
import type { AuditLine, AuditLog } from '../audit.js';
import type { AuthNotices } from '../auth-notice.js';
import type { Config, ModeConfig } from '../config.js';
import { billingOf } from '../credit/billing.js';
import type { Admission, Budgets } from '../credit/budget.js';
import { type CreditMeter, creditSentence } from '../credit/meter.js';
import { sayError } from '../errors.js';
import { html } from '../html.js';
import { type Lang, noticeLang, t } from '../i18n.js';
import type { Logger } from '../logger.js';
import { modeTag, withoutModeTags } from '../mode-tag.js';
import type { ModeRegistry } from '../modes.js';
import { type Notifier, PROXY_TAG } from '../notices.js';
import { redactValue } from '../redact.js';
import { followSwitchMarkers, SwitchMarkerFilter } from '../switch-marker.js';
import type { Switcher } from '../switcher.js';
import { hasAssistant, headChars } from '../text.js';
import { collectToolCall } from '../tool-calls.js';
import type { ToolSelection } from '../tool-filter.js';
import { addUsage, type Billing, NO_USAGE, type UsageLedger } from '../usage.js';
import { usageContext } from '../usage-summary.js';
import { OfferedCallsOnly } from './offered-calls.js';
import type { ChatPorts } from './ports.js';
import { asksModelOutput, type ChatEvent, type ChatRequest } from './request.js';
import { ShutdownError } from './turns.js';

/** How many tool rounds one answer may take before the model must answer in words. */
const MAX_TOOL_ROUNDS = 5;
/**
 * How many of one round's calls run. A looping model (or an upstream that repeats a call) may send
 * dozens at once: all run together they would start as many processes, and their results (up to
 * 8,000 characters each) would not fit the model's context in the next round. A call beyond gets a
 * result that says it was not run and why, so the model reads it and every call id has its answer.
 */
const MAX_CALLS_PER_ROUND = 8;

export interface AnswerDeps {
  config: Config;
  modes: ModeRegistry;
  switcher: Switcher;
  ledger: UsageLedger;
  notifier: Notifier;
  /** The credentials-refused notices, one per credentials and episode. */
  authNotices: AuthNotices;
  /** Where the notices' language is kept (noticeLang). */
  kv: { get(key: string): string | undefined };
  audit: AuditLog;
  logger: Logger;
  ports: ChatPorts;
  /** The modes' spending caps. */
  budgets?: Budgets;
  /** The Agent SDK credit, told to the brain when the user asks about consumption. */
  meter?: CreditMeter;
  /** Told of every brain failure (the usage-limit and credit watchers listen). */
  onBrainError(mode: ModeConfig, error: BrainError): void;
  /** Told once the turn is in the ledger (the credit watcher listens). */
  onRecorded(turn: { mode: ModeConfig; billing?: Billing; costUsd: number }): void;
}

export interface AnswerInput {
  brain: Brain;
  mode: ModeConfig;
  req: ChatRequest;
  /** The client's tools the mode gives its brain. */
  tools: ToolSelection;
  lang: Lang;
  /** The user asks about consumption: the brain gets a usage summary. */
  usageAsked: boolean;
}

/**
 * One answer of a brain, as the faces get it: refused at once when a budget
 * is spent, the brain's events with switch markers stripped and the mode tag
 * in front, brainstem's read-only tools run for a local model whose client
 * brought none (up to MAX_TOOL_ROUNDS rounds), auth failures turned into a
 * renewal notice, approvals audited, and the turn written to the usage ledger
 * however it ends. A marker's switch starts once the answer is over.
 */
export async function* answerTurn(
  deps: AnswerDeps,
  { brain, mode, req, tools, lang, usageAsked }: AnswerInput,
  signal: AbortSignal,
): AsyncGenerator<ChatEvent> {
  const started = Date.now();
  const markers = new SwitchMarkerFilter();
  // A tag in front of JSON the client asked for would break it, and logprobs would no longer match the text.
  let tagPending = deps.config.server.modeTag && !asksModelOutput(req);
  let usage: TurnUsage | undefined;
  let brainSessionId: string | undefined;
  let failure: BrainError | undefined;
  const text = (chunk: string): ChatEvent[] => {
    if (!chunk) return [];
    if (tagPending) {
      tagPending = false;
      return [{ type: 'text', text: `${modeTag(mode.id)}${chunk}` }];
    }
    return [{ type: 'text', text: chunk }];
  };
  const { toolbox } = deps.ports;
  // A local model whose client brought no tools gets brainstem's own read-only ones, unless the
  // client said tool_choice "none": it wants words only (a summary of the text it sent), and that
  // choice goes upstream only beside the client's own tools.
  const offered =
    mode.kind === 'llama' && !req.tools?.length && req.toolChoice !== 'none' && toolbox
      ? toolbox.definitions(mode.allowedTools, mode.deniedTools)
      : [];
  const offeredNames = new Set(offered.map((d) => d.function.name));
  // Its earlier answers come back as the client got them, tagged: the brain gets its own words.
  let messages = withoutModeTags(req.messages, deps.modes.ids());
  const admission: Admission = deps.budgets?.admit(mode, lang) ?? { ok: true };
  try {
    if (!admission.ok) {
      failure = admission.error;
      deps.logger.info({ mode: mode.id, limit: failure.limit }, 'turn refused by a budget');
      yield { type: 'error', error: failure };
      return;
    }
    /** Text was given in an earlier round: the next round's starts a paragraph of its own. */
    let spoken = false;
    for (let round = 0; ; round++) {
      const calls: ToolCall[] = [];
      const clientCalls = new OfferedCallsOnly(new Set(tools.offered.map((t) => t.function.name)));
      let said = '';
      // The last round offers no tool: the model answers in words instead of calling one more.
      const ownTools = offered.length > 0 && round < MAX_TOOL_ROUNDS ? offered : undefined;
      let runTools = false;
      const events = brain.turn(
        {
          sessionKey: req.sessionKey,
          messages,
          freshSession: !hasAssistant(messages),
          tools: offered.length > 0 ? ownTools : tools.offered,
          toolChoice: tools.offered.length > 0 ? req.toolChoice : undefined,
          maxTokens: req.maxTokens,
          options: req.options,
          extraContext: usageAsked ? usageFigures(deps) : undefined,
          approve: req.approve ?? deps.ports.approver,
          depth: req.depth,
          maxBudgetUsd: admission.maxBudgetUsd,
          outbox: req.outbox,
          uploads: req.uploads,
          lang,
          // From the second round on, the messages end with this answer's tool results: an overflow is theirs.
          ownToolResults: round > 0,
          clientHistory: req.source === 'openai',
        },
        signal,
      );
      for await (const ev of events) {
        if (offered.length > 0 && ev.type === 'tool_call') {
          collectToolCall(calls, ev);
          continue;
        }
        // A round cut at the output limit ends the answer: its calls' arguments are cut too, and
        // fed back as an error the model cannot read, it would make the same call and be cut again.
        if (
          offered.length > 0 &&
          ev.type === 'done' &&
          calls.length > 0 &&
          round < MAX_TOOL_ROUNDS &&
          ev.finishReason !== 'length'
        ) {
          runTools = true;
          continue;
        }
        switch (ev.type) {
          case 'text': {
            const chunk = spoken && !said ? `\n\n${ev.text}` : ev.text;
            said += ev.text;
            yield* text(markers.push(chunk));
            break;
          }
          case 'usage':
            // The whole turn's so far: a client reads the last one as the answer's usage.
            usage = addUsage(usage, ev.usage);
            yield { type: 'usage', usage };
            break;
          case 'session':
            brainSessionId = ev.sessionId;
            yield ev;
            break;
          case 'approval':
            deps.audit.write(approvalLine(ev));
            yield ev;
            break;
          case 'tool_call': {
            const passed = clientCalls.pass(ev);
            if (passed) yield passed;
            break;
          }
          case 'done': {
            yield* text(markers.flush());
            // Claude took its credentials: a later refusal is news again.
            if (!failure) deps.authNotices.answered(mode);
            // A call cut at the output limit keeps its cut arguments: completing them would hide the cut.
            if (ev.finishReason !== 'length') yield* clientCalls.emptyArguments();
            const { refused } = clientCalls;
            if (refused.length > 0) {
              deps.logger.warn(
                { mode: mode.id, tools: refused, sessionKey: req.sessionKey },
                `the model called tools it was not given, held back: ${refused.join(', ')}`,
              );
              yield* text(
                `${said ? '\n\n' : ''}${PROXY_TAG} ${heldBackText(refused, tools.filtered, mode.id, lang)}`,
              );
            }
            if (calls.length > 0) {
              // Calls left here were cut at the output limit, or came in the last round, which offered
              // no tool: not run, and said rather than dropped.
              const names = [...new Set(calls.map((c) => c.function.name))].join(', ');
              const cut = ev.finishReason === 'length';
              deps.logger.warn(
                { mode: mode.id, tools: names, sessionKey: req.sessionKey },
                cut
                  ? 'the model was cut at its output limit while calling tools; not run'
                  : 'the model called tools after its last tool round; not run',
              );
              yield* text(
                `${spoken || said ? '\n\n' : ''}${PROXY_TAG} ${
                  cut
                    ? t(
                        lang,
                        `The model’s call of ${names} was cut at its output limit (max_tokens, llama-server’s --n-predict or the end of its context): not run.`,
                        `L’appel de ${names} par le modèle a été coupé à sa limite de sortie (max_tokens, --n-predict de llama-server ou la fin de son contexte) : rien n’a été lancé.`,
                      )
                    : t(
                        lang,
                        `The model called ${names} after ${MAX_TOOL_ROUNDS} rounds of tools, the most one answer may take: not run. Ask again for it to go on.`,
                        `Le modèle a appelé ${names} après ${MAX_TOOL_ROUNDS} tours d’outils, le maximum pour une réponse : rien n’a été lancé. Redemandez pour qu’il continue.`,
                      )
                }`,
              );
            }
            // Calls of brainstem's own tools are not the client's: it offered none of them. Nor are calls held back.
            const noCall = offered.length > 0 || !clientCalls.anyPassed();
            if (noCall && ev.finishReason === 'tool_calls') yield { ...ev, finishReason: 'stop' };
            // An upstream that ends its calls with "stop" (Ollama's OpenAI endpoint in some versions):
            // the client gets "tool_calls", as OpenAI sends, since clients and agent loops (OpenClaw's)
            // read a "stop" as the answer's end and would leave the calls unrun.
            else if (!noCall && ev.finishReason === 'stop') yield { ...ev, finishReason: 'tool_calls' };
            else yield ev;
            break;
          }
          case 'error': {
            yield* text(markers.flush());
            const cut = signal.reason instanceof ShutdownError;
            failure = cut
              ? {
                  ...ev.error,
                  kind: 'shutting_down' as const,
                  message: (signal.reason as ShutdownError).message,
                  retryAfterMs: (signal.reason as ShutdownError).retryAfterMs,
                  // The brain's French words said why it failed, not that brainstem cut it.
                  fr: undefined,
                }
              : (deps.budgets?.stopped(mode, admission, ev.error, lang) ?? ev.error);
            if (failure.kind === 'auth') {
              // One renewal notice per credentials and episode (src/auth-notice.ts), whatever the
              // number of failing turns and modes. The brain's message quotes the upstream: plain
              // text, escaped whole. In the notices' language, as every notice: not the turn's (one
              // from the API has none).
              const noticesIn = noticeLang(deps.kv);
              deps.authNotices.refused(mode, noticesIn, html`${sayError(failure, noticesIn)}`);
            }
            deps.onBrainError(mode, failure);
            yield { type: 'error', error: failure };
            break;
          }
          default:
            yield ev;
        }
      }
      spoken ||= said.length > 0;
      if (!runTools || !toolbox) break;
      const run = calls.slice(0, MAX_CALLS_PER_ROUND);
      const skipped = calls.slice(MAX_CALLS_PER_ROUND);
      yield { type: 'notice', text: `${PROXY_TAG} ${roundNotice(run, skipped, offeredNames, lang)}` };
      if (skipped.length > 0) {
        deps.logger.warn(
          { mode: mode.id, calls: calls.length, sessionKey: req.sessionKey },
          `the model made ${calls.length} tool calls in one round; only the first ${MAX_CALLS_PER_ROUND} run`,
        );
      }
      const notOffered = run.map((c) => c.function.name).filter((name) => !offeredNames.has(name));
      if (notOffered.length > 0) {
        // The toolbox refuses them (the model reads why); the log says who asked for what.
        deps.logger.warn(
          { mode: mode.id, tools: notOffered, sessionKey: req.sessionKey },
          `the model called tools it was not offered, not run: ${notOffered.join(', ')}`,
        );
      }
      const results = await Promise.all(
        run.map((c) =>
          toolbox.run(c.function.name, c.function.arguments, {
            caller: headChars(`brain:${mode.id}:${req.sessionKey}`, 100),
            signal,
            allowed: mode.allowedTools,
            denied: mode.deniedTools,
            // The model of this turn makes the call: one brain more than above the turn.
            depth: (req.depth ?? 0) + 1,
          }),
        ),
      );
      messages = [
        ...messages,
        { role: 'assistant', content: said || null, tool_calls: calls },
        ...calls.map(
          (c, i): ChatMessage => ({
            role: 'tool',
            tool_call_id: c.id,
            content: i < run.length ? (results[i] ?? '') : notRunResult(calls.length),
          }),
        ),
      ];
    }
  } finally {
    const billing = billingOf(mode, deps.config.claude.env);
    const cost = usage ?? NO_USAGE;
    // Never throws: under another process's lock the row is kept until the lock is gone.
    deps.ledger.record({
      ts: started,
      mode: mode.id,
      sessionKey: req.sessionKey,
      brainSessionId,
      source: req.source,
      ...cost,
      durationMs: Date.now() - started,
      // A limit says which one: `usage_limit:day_budget: …`.
      error: failure
        ? headChars(`${failure.kind}${failure.limit ? `:${failure.limit}` : ''}: ${failure.message}`, 500)
        : signal.aborted
          ? 'aborted'
          : undefined,
      billing,
    });
    // Even when the row is kept: a hold kept would refuse every later turn of the mode. Until
    // the row is written, the day's budget does not count this turn's spend.
    if (admission.ok) admission.release?.();
    deps.onRecorded({ mode, billing, costUsd: cost.costUsd });
    followSwitchMarkers(markers.found, deps, mode.id, req.lang);
  }
}

/** The ledger's figures, and the credit's in one sentence, for the brain. */
function usageFigures(deps: AnswerDeps): string {
  const credit = deps.meter ? creditSentence(deps.meter.reading()) : undefined;
  return usageContext(deps.ledger, Date.now(), credit);
}

/** A tool approval decision as an audit row, like an infra tool call. */
function approvalLine(ev: Extract<TurnEvent, { type: 'approval' }>): AuditLine {
  const { request: r, decision: d } = ev;
  return {
    ts: Date.now() - ev.waitedMs,
    tool: `approval:${r.tool}`,
    caller: r.sessionKey,
    args: JSON.stringify(
      redactValue({
        summary: r.summary,
        by: ev.source,
        ...(d.behavior === 'allow' ? { scope: d.scope } : {}),
      }),
    ),
    ok: d.behavior === 'allow',
    durationMs: ev.waitedMs,
    error: d.behavior === 'deny' ? d.message : undefined,
  };
}

/**
 * What a chat shows of a round's calls before they run: 🔧 for a tool at work, 🚫 for one the model
 * was not offered (a tool that changes things, a denied or an unknown one), which the toolbox
 * refuses. Shown as 🔧, a refused `make_target` would read as a deploy that ran.
 */
function roundNotice(
  calls: ToolCall[],
  skipped: ToolCall[],
  offered: ReadonlySet<string>,
  lang: Lang,
): string {
  const shown = calls.map((c) =>
    offered.has(c.function.name) ? `🔧 ${c.function.name}` : `🚫 ${c.function.name || '?'}`,
  );
  const refused = calls.some((c) => !offered.has(c.function.name));
  // Named once each: thirty calls listed one by one would bury the answer.
  const names = [...new Set(skipped.map((c) => c.function.name || '?'))].join(', ');
  return `${shown.join(', ')}${
    refused
      ? t(
          lang,
          ' (🚫: not offered to the model, not run)',
          ' (🚫 : non proposé au modèle, rien n’a été lancé)',
        )
      : ''
  }${
    skipped.length > 0
      ? t(
          lang,
          `; ${skipped.length} more calls (${names}) not run: at most ${MAX_CALLS_PER_ROUND} run in one round`,
          ` ; ${skipped.length} autres appels (${names}) non lancés : ${MAX_CALLS_PER_ROUND} au plus par tour`,
        )
      : ''
  }`;
}

/** The result the model reads for a call beyond MAX_CALLS_PER_ROUND: why it was not run, and what to do. */
function notRunResult(made: number): string {
  return `Error: not run. You made ${made} tool calls in one round, and only the first ${MAX_CALLS_PER_ROUND} of a round are run. Make the calls you still need in your next round, or answer with what you have.`;
}

/**
 * Why the calls held back were not run, by cause: a tool the client offered that the mode's
 * toolFilter kept from the model, or one no one offered (a model may call a tool it only knows of).
 */
function heldBackText(refused: string[], filtered: string[], modeId: string, lang: Lang): string {
  const kept = refused.filter((name) => filtered.includes(name));
  const unknown = refused.filter((name) => !filtered.includes(name));
  const lines: string[] = [];
  if (kept.length > 0) {
    const names = kept.join(', ');
    lines.push(
      t(
        lang,
        `The model called ${names}, which mode ${modeId} does not give it (modes.${modeId}.toolFilter): not run.`,
        `Le modèle a appelé ${names}, que le mode ${modeId} ne lui donne pas (modes.${modeId}.toolFilter) : rien n’a été lancé.`,
      ),
    );
  }
  if (unknown.length > 0) {
    const names = unknown.join(', ');
    lines.push(
      t(
        lang,
        `The model called ${names}, which the request did not offer it: not run.`,
        `Le modèle a appelé ${names}, que la requête ne lui proposait pas : rien n’a été lancé.`,
      ),
    );
  }
  return lines.join(' ');
}
