import { EventEmitter } from 'node:events';
import type { Brain, BrainError } from '../../brains/types.js';
import type { AuditLog } from '../audit.js';
import { AuthNotices } from '../auth-notice.js';
import { ACTIVE, type Config, type ModeConfig } from '../config.js';
import { checkNewTurnAudio } from '../content-parts.js';
import type { Budgets } from '../credit/budget.js';
import type { CreditMeter } from '../credit/meter.js';
import type { KvStore } from '../db/index.js';
import { BrainstemError } from '../errors.js';
import type { Lang } from '../i18n.js';
import { checkImages, isImagePart, noVisionError, takesImages } from '../images.js';
import { detectIntent, guessLang, type Intent } from '../intents.js';
import type { Logger } from '../logger.js';
import { type ModeRegistry, stripPrefix } from '../modes.js';
import type { Notifier } from '../notices.js';
import type { ReadinessBoard } from '../readiness.js';
import type { Switcher } from '../switcher.js';
import { lastAssistantIndex, latestUserWords, newTurnHasOtherParts, newTurnText } from '../text.js';
import { selectTools, type ToolSelection, toolChoiceRefusal } from '../tool-filter.js';
import type { Billing, UsageLedger } from '../usage.js';
import type { StatusFacts } from './facts.js';
import type { ChatPorts } from './ports.js';
import { asksModelOutput, type ChatEvent, type ChatRequest } from './request.js';
import { type StatusLine, StatusLines } from './status-lines.js';
import { helpText, modesText, statusText, switchReply } from './texts.js';
import { answerTurn } from './tool-loop.js';
import { Turns } from './turns.js';

export interface ChatDeps {
  config: Config;
  modes: ModeRegistry;
  brains: Map<string, Brain>;
  switcher: Switcher;
  ledger: UsageLedger;
  notifier: Notifier;
  /** Where the notices' language is kept (noticeLang). */
  kv: KvStore;
  audit: AuditLog;
  logger: Logger;
  readiness: ReadinessBoard;
  /** The modes' spending caps. */
  budgets?: Budgets;
  /** The Agent SDK credit, told to the brain when the user asks about consumption. */
  meter?: CreditMeter;
  /** What the parts wired around the core lend it (see ChatPorts). */
  ports: ChatPorts;
  startedAt: number;
  version: string;
}

/**
 * The core both faces call: it answers what brainstem answers itself (switch
 * requests, help, status, the tools' shortcut words), waits for a running
 * switch, refuses what the mode cannot honour, serialises turns of one
 * conversation, and streams the brain's answer (see answerTurn).
 */
export class ChatService extends EventEmitter<{
  /**
   * A brain failed. `tool` names the tool whose one-shot task it was (claude_code), whose made-up
   * mode is no mode of the owner's: notices name the tool instead.
   */
  brainError: [{ mode: ModeConfig; error: BrainError; tool?: string }];
  /** A turn is in the ledger. */
  turn: [{ mode: ModeConfig; billing?: Billing; costUsd: number }];
}> {
  private readonly turns = new Turns();
  private readonly status: StatusLines;
  private readonly authNotices: AuthNotices;

  constructor(private readonly deps: ChatDeps) {
    super();
    this.authNotices = new AuthNotices({ notifier: deps.notifier, claudeEnv: deps.config.claude.env });
    this.status = new StatusLines(
      deps.readiness,
      () => deps.modes.all,
      () => deps.switcher.active().id,
      (mode) => {
        const en = deps.switcher.notLoaded(mode, 'en');
        return en === undefined ? undefined : { en, fr: deps.switcher.notLoaded(mode, 'fr') ?? en };
      },
    );
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
    if (this.turns.closed) throw this.shutdownRefusal();
    const requested = this.resolveMode(req.model);
    // Before any mode's refusal: what is wrong with the part is the same for all of them.
    checkNewTurnAudio(req.messages);
    // `active` during a switch is the mode the switch ends on: checked once it is over (stream), not
    // refused by the mode it leaves (a photo sent as a text-only mode gives way to Claude).
    const following = stripPrefix(req.model).toLowerCase() === ACTIVE;
    const tools = following && this.deps.switcher.isSwitching() ? undefined : this.check(requested, req);
    const newTurn = newTurnText(req.messages);
    const images = checkImages(req.messages, lastAssistantIndex(req.messages) + 1);
    const endsWithToolResult = req.messages.at(-1)?.role === 'tool';
    // A turn of images alone (a photo without a caption), or of audio or a file, is a question too.
    const content = newTurn.trim().length > 0 || images.newTurn > 0 || newTurnHasOtherParts(req.messages);
    if (!content && !endsWithToolResult) {
      // An assistant message last asks the model to carry on with it (a prefill), which neither the
      // Claude CLI nor brainstem's turns do: said as such, not as a missing user message.
      const prefill = req.messages.at(-1)?.role === 'assistant' ? `messages.${req.messages.length - 1}` : '';
      throw new BrainstemError(
        'INVALID_REQUEST',
        prefill
          ? `${prefill}: the last message is the assistant's, to be continued (a prefill), which brainstem's brains do not do; end with a user message or a tool result.`
          : 'messages: there is no user message to answer.',
        prefill || 'messages',
      );
    }
    return this.stream(req, requested, tools, newTurn, images.newTurn > 0, signal);
  }

  /**
   * Shutdown: refuse new turns, give running ones `graceMs` to finish, then cut
   * them short (each face tells its user). Resolves when none is left.
   */
  async drain(graceMs: number): Promise<void> {
    await Promise.all([this.deps.readiness.stop(), this.turns.drain(graceMs, this.deps.logger)]);
  }

  /** SHUTTING_DOWN for a request that comes while brainstem stops, telling when to send it again. */
  shutdownRefusal(): BrainstemError {
    return this.turns.refusal(this.deps.config.server.shutdownGraceMs);
  }

  /** Every mode's last known readiness, at once: never waits for a probe (for /health). */
  knownStatus(): StatusLine[] {
    return this.status.known();
  }

  /** Every mode's readiness from a probe running or started now, waiting at most `timeoutMs`. */
  statusLines(timeoutMs = 3000): Promise<StatusLine[]> {
    return this.status.fresh(timeoutMs);
  }

  /** What status answers are made of, in every face. */
  async statusFacts(timeoutMs = 3000): Promise<StatusFacts> {
    const lines = await this.statusLines(timeoutMs);
    return {
      active: this.deps.switcher.active(),
      switching: this.deps.switcher.isSwitching(),
      lines,
      uptimeMs: Date.now() - this.deps.startedAt,
      version: this.deps.version,
    };
  }

  private async *stream(
    req: ChatRequest,
    requested: ModeConfig,
    /** Undefined when the mode that answers is checked only once a switch is over. */
    requestedTools: ToolSelection | undefined,
    newTurn: string,
    withImages: boolean,
    signal: AbortSignal,
  ): AsyncGenerator<ChatEvent> {
    const words = latestUserWords(newTurn);
    const lang = req.lang ?? guessLang(words);
    // A caption is about its image: it goes to the brain, never read as a switch request or a shortcut
    // word. Nor are the words of a client that asked for JSON or logprobs, which brainstem's answers lack.
    const readable = words && !withImages && !asksModelOutput(req);
    const intent = readable ? detectIntent(words, (n) => this.deps.modes.find(n) !== undefined) : undefined;
    // Nor is a brain's message (brain_chat) acted on: what brainstem does for a person's words (a
    // switch, a confirmed make target) must not be had by a brain without the approval the tool asks.
    // A question about spending still gets the figures.
    const fromTool = req.source === 'tool';
    // Telegram's shortcut words are its tool commands' (handlers/telegram/commands/tools.ts): they ask
    // with Confirm / Cancel whoever may answer and audit who ran it, which this answerer cannot do.
    // So a chat's words reaching here (a voice note's) go to the brain, whose tools ask first.
    const answers = Boolean(readable) && !fromTool && req.source !== 'telegram';
    const own = fromTool ? undefined : await this.answerItself(intent, lang, answers);
    if (own !== undefined) {
      yield { type: 'text', text: own };
      yield { type: 'done', finishReason: 'stop' };
      return;
    }
    const shortcut = answers ? this.deps.ports.answerer?.(words, lang, signal, req.sessionKey) : undefined;
    if (shortcut) {
      for await (const chunk of shortcut) yield { type: 'text', text: chunk };
      yield { type: 'done', finishReason: 'stop' };
      return;
    }

    const following = stripPrefix(req.model).toLowerCase() === ACTIVE;
    for (;;) {
      if (this.deps.switcher.isSwitching()) yield { type: 'switch_wait' };
      await this.deps.switcher.whenIdle(signal);
      if (signal.aborted) return;
      // The stop left a switch to the next start: `active` is still the mode the user asked to leave.
      if (following && this.deps.switcher.hasLeftSwitch()) throw this.shutdownRefusal();
      // `active` means the mode active once the switch is over, not the one when the request came in.
      const mode = following ? this.deps.switcher.active() : requested;
      // A mode named whose model a swap stopped: a shared LLAMA_BASE_URL would answer with another model.
      const notLoaded = following ? undefined : this.deps.switcher.notLoaded(mode);
      if (notLoaded) {
        const fr = `${this.deps.switcher.notLoaded(mode, 'fr')}.`;
        throw new BrainstemError('MODEL_NOT_LOADED', `${notLoaded}.`, 'model', fr);
      }
      const brain = this.deps.brains.get(mode.id);
      if (!brain) throw new Error(`no brain for mode ${mode.id}`);
      // A switch while this request waited may have changed what `active` honours; nothing was sent yet.
      const tools = mode.id === requested.id && requestedTools ? requestedTools : this.check(mode, req);

      const known = { type: 'mode', mode, filteredTools: tools.filtered } as const;
      // A named mode is known before the wait for the conversation's running turn: a stream whose
      // headers go while it waits still names the tools kept back. `active` is known only once the
      // turn starts, since a switch while it waits changes which mode answers.
      if (!following) yield known;
      const key = turnKey(mode.id, req.sessionKey);
      if (this.turns.busy(key)) yield { type: 'queued' };
      const turn = await this.turns.enter(key, signal);
      // A switch begun while this turn queued waits for the answers of the model it stops, not for
      // this one: run now, it would reach a model being stopped. One over by now may have made
      // another mode `active`, which may refuse the request, or stopped the model of the mode named:
      // it is asked again.
      const switched = following
        ? this.deps.switcher.active().id !== mode.id
        : this.deps.switcher.notLoaded(mode) !== undefined;
      if (this.deps.switcher.isSwitching() || switched) {
        turn.leave();
        continue;
      }
      try {
        if (signal.aborted) return;
        if (following) yield known;
        const events = answerTurn(
          {
            ...this.deps,
            authNotices: this.authNotices,
            onBrainError: (m, error) => this.emit('brainError', { mode: m, error }),
            onRecorded: (recorded) => this.emit('turn', recorded),
          },
          { brain, mode, req, tools, lang, usageAsked: intent?.kind === 'usage' },
          turn.signal,
        );
        for await (const ev of events) {
          yield ev.type === 'error' && following ? this.withFallback(ev, mode) : ev;
        }
      } finally {
        turn.leave();
      }
      return;
    }
  }

  /**
   * Throws INVALID_REQUEST naming the first field the mode cannot honour;
   * returns which of the client's tools its brain gets (logging those it does not).
   */
  private check(mode: ModeConfig, req: ChatRequest): ToolSelection {
    // Only the new turn's images are refused: earlier ones are told as text to a model that takes none.
    const image = takesImages(mode) ? undefined : newTurnImagePath(req.messages);
    if (image) throw noVisionError(mode, image);
    const tools = selectTools(mode, req.tools);
    const refusal =
      this.deps.brains
        .get(mode.id)
        ?.refuse?.({ options: req.options, toolChoice: req.toolChoice, messages: req.messages }) ??
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
   * A turn of the active mode that Claude's usage limit refused has no answer, and the fallback mode
   * that this limit switches to takes over until the reset (UsageLimitWatcher, told of the error before
   * it comes here): the one who asked hears that, and that the message is to be sent again, not only
   * when the limit resets. Said in both of the error's languages, each face picking its reader's.
   */
  private withFallback(ev: Extract<ChatEvent, { type: 'error' }>, mode: ModeConfig): ChatEvent {
    const fallback = this.deps.ports.fallbackFor?.(mode, ev.error);
    if (!fallback || fallback.id === mode.id) return ev;
    const { message, fr } = ev.error;
    const then = ` Mode ${fallback.id} answers until then: send your message again to have it answered there.`;
    const thenFr = ` Le mode ${fallback.id} répond d’ici là : renvoyez votre message pour qu’il y réponde.`;
    return {
      ...ev,
      error: {
        ...ev.error,
        message: `${message}${then}`,
        fr: fr === undefined ? undefined : `${fr}${thenFr}`,
      },
    };
  }

  /**
   * The answer to words brainstem answers itself (a switch, help, modes, status), if they are such words.
   * `shortcuts`: whether this conversation's shortcut words run their tool, so the help names them.
   */
  private async answerItself(
    intent: Intent | undefined,
    lang: Lang,
    shortcuts: boolean,
  ): Promise<string | undefined> {
    const { switcher, modes } = this.deps;
    switch (intent?.kind) {
      case 'switch':
        return switchReply(await switcher.switchTo(intent.target, { source: 'intent', lang }), lang);
      case 'help':
        return helpText(lang, shortcuts ? (this.deps.ports.shortcutWords?.() ?? []) : []);
      case 'modes':
        return modesText(modes.all, switcher.active().id, lang);
      case 'status':
        return statusText(await this.statusFacts(), lang);
      default:
        return undefined;
    }
  }
}

/** Where the new turn's first image is (`messages.3.content.1`), or undefined when it has none. */
function newTurnImagePath(messages: ChatRequest['messages']): string | undefined {
  for (let i = lastAssistantIndex(messages) + 1; i < messages.length; i++) {
    const m = messages[i];
    if (m?.role !== 'user' || !Array.isArray(m.content)) continue;
    const j = m.content.findIndex(isImagePart);
    if (j >= 0) return `messages.${i}.content.${j}`;
  }
  return undefined;
}

/** One conversation of one mode: its turns run one at a time. */
function turnKey(mode: string, sessionKey: string): string {
  return `${mode}\u0000${sessionKey}`;
}
