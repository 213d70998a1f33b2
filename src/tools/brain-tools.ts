import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { ClaudeCodeBrain } from '../../brains/claude-code/index.js';
import type { BrainError, ChatMessage, FinishReason, TurnUsage } from '../../brains/types.js';
import { brainFailure as endpointFailure } from '../brain-failure.js';
import type { ModeConfig } from '../config.js';
import type { Core } from '../core.js';
import { billingOf } from '../credit/billing.js';
import { BrainstemError } from '../errors.js';
import { type Lang, t } from '../i18n.js';
import { ownFiles, unreadableByClaude } from '../own-files.js';
import { toolSessionKey } from '../session-keys.js';
import { headChars } from '../text.js';
import { NO_USAGE } from '../usage.js';
import type { ToolsConfig } from './config.js';
import { OutputCap } from './exec.js';
import { type AnyTool, defineTool, type ToolContext, type ToolOutput } from './registry.js';

/** Brains as tools: a message to a mode's brain, and a one-shot Claude Code task. Both land in the usage ledger. */

const ONE_SHOT_MODE = 'claude_code';

export function brainTools(core: Core, cfg: ToolsConfig): AnyTool[] {
  const resolveMode = (ref: string): ModeConfig => {
    const m = core.modes.resolveRef(ref, () => core.switcher.active());
    if (!m) {
      throw new BrainstemError(
        'UNKNOWN_MODE',
        `Unknown mode "${ref}". Modes: active, ${core.modes.ids().join(', ')}.`,
        'mode',
        `Mode inconnu : "${ref}". Modes : active, ${core.modes.ids().join(', ')}.`,
      );
    }
    return m;
  };
  const granted = new Set(cfg.claudeCode.allowedTools);
  /** Brains calling brains end somewhere: past tools.maxBrainDepth the call is refused. */
  const checkDepth = (tool: string, ctx: ToolContext) => {
    const depth = ctx.depth ?? 0;
    if (depth <= cfg.maxBrainDepth) return;
    throw new BrainstemError(
      'TOOL_FORBIDDEN',
      `${tool} refused: brains may call brains only ${cfg.maxBrainDepth} level${cfg.maxBrainDepth === 1 ? '' : 's'} deep (tools.maxBrainDepth), and this call comes from level ${depth}. Answer with what you have instead.`,
    );
  };

  return [
    defineTool({
      name: 'brain_chat',
      description:
        'Sends a message to the brain of a mode (or `active`) and returns its answer and usage. Give a sessionKey (the one an earlier call returned) to continue that conversation: a Claude mode goes on from its session; a local model keeps no earlier turns here and gets this message alone, so quote what it needs.',
      // A Claude mode acts with its own allowed tools (Bash, Edit…): asking one is asked first,
      // or a mode allowed less would get what another is allowed. A local model only reads.
      mutating: (input) => {
        try {
          return resolveMode(input.mode).kind === 'claude';
        } catch {
          return true;
        }
      },
      authorize: (input) => void resolveMode(input.mode),
      run: async (input, ctx) => {
        checkDepth('brain_chat', ctx);
        const mode = resolveMode(input.mode);
        const sessionKey = toolSessionKey(input.sessionKey);
        const events = core.chat.run(
          {
            model: mode.id,
            sessionKey,
            messages: history(core, sessionKey, mode, input.message),
            source: 'tool',
            depth: ctx.depth,
          },
          ctx.signal,
        );
        const cap = new OutputCap(cfg.maxOutputChars);
        let usage: TurnUsage | undefined;
        let finish: FinishReason | undefined;
        for await (const ev of events) {
          if (ev.type === 'text') {
            cap.push(ev.text);
            ctx.onOutput?.(ev.text);
          } else if (ev.type === 'usage') usage = ev.usage;
          else if (ev.type === 'done') finish = ev.finishReason;
          else if (ev.type === 'error') throw brainFailure(ev.error);
        }
        const cut = mode.kind === 'claude' ? claudeChatCut(sessionKey, ctx.lang) : localChatCut(ctx.lang);
        return { ...answerOf(cap, finish, cut), data: { mode: mode.id, sessionKey, usage } };
      },
    }),
    defineTool({
      name: 'claude_code',
      description: `Runs a one-shot Claude Code task (claude -p) in its configured working directory. It may use only the tools granted in tools.claudeCode.allowedTools (${cfg.claudeCode.allowedTools.join(', ') || 'none: read-only tools only'}), or fewer.`,
      authorize: (input) => {
        const extra = (input.allowedTools ?? []).filter((t) => !granted.has(t));
        if (extra.length > 0) {
          throw new BrainstemError(
            'TOOL_FORBIDDEN',
            `Not granted to claude_code: ${extra.join(', ')}. Granted: ${[...granted].join(', ') || 'none'} (tools.claudeCode.allowedTools).`,
            'allowedTools',
            `Non accordés à claude_code : ${extra.join(', ')}. Accordés : ${[...granted].join(', ') || 'aucun'} (tools.claudeCode.allowedTools).`,
          );
        }
      },
      run: async (input, ctx) => {
        checkDepth('claude_code', ctx);
        const mode: ModeConfig = {
          id: ONE_SHOT_MODE,
          kind: 'claude',
          description: 'one-shot Claude Code task',
          aliases: [],
          allowedTools: input.allowedTools ?? cfg.claudeCode.allowedTools,
          deniedTools: [],
          model: cfg.claudeCode.model,
        };
        // No MCP server: a task started through a tool must not reach brainstem's tools in turn.
        const brain = new ClaudeCodeBrain({
          mode,
          cwd: cfg.claudeCode.cwd ?? path.join(core.config.dataDir, 'workspaces', ONE_SHOT_MODE),
          claude: core.config.claude,
          sessions: core.sessions,
          logger: core.logger,
          processes: core.claudeProcesses,
          unreadable: unreadableByClaude(ownFiles(core.config)),
        });
        const sessionKey = `${ONE_SHOT_MODE}:${randomUUID()}`;
        const started = Date.now();
        const cap = new OutputCap(cfg.maxOutputChars);
        let usage: TurnUsage | undefined;
        let brainSessionId: string | undefined;
        let finish: FinishReason | undefined;
        let failure: BrainError | undefined;
        try {
          const req = {
            sessionKey,
            messages: [{ role: 'user' as const, content: input.prompt }],
          };
          for await (const ev of brain.turn({ ...req, freshSession: true, depth: ctx.depth }, ctx.signal)) {
            if (ev.type === 'text') {
              cap.push(ev.text);
              ctx.onOutput?.(ev.text);
            } else if (ev.type === 'usage') usage = ev.usage;
            else if (ev.type === 'session') brainSessionId = ev.sessionId;
            else if (ev.type === 'done') finish = ev.finishReason;
            else if (ev.type === 'error') failure = ev.error;
          }
        } finally {
          // One shot: nothing will resume it, so it does not belong in the session list.
          core.sessions.forget(sessionKey, ONE_SHOT_MODE);
          // Spent like a chat turn's: on the subscription it comes out of the monthly credit.
          const billing = billingOf(mode, core.config.claude.env);
          const cost = usage ?? NO_USAGE;
          core.ledger.record({
            ts: started,
            mode: ONE_SHOT_MODE,
            sessionKey,
            brainSessionId,
            source: 'tool',
            ...cost,
            durationMs: Date.now() - started,
            error: failure ? headChars(`${failure.kind}: ${failure.message}`, 500) : undefined,
            billing,
          });
          // The credit's notices, forecast and fallback switch follow every recorded spend.
          core.chat.emit('turn', { mode, billing, costUsd: cost.costUsd });
          // As a chat turn's failure: Claude's word that the credit is spent or a usage limit is reached
          // (with its reset) reaches the watchers, or /usage and /status kept an older date, or none.
          if (failure) core.chat.emit('brainError', { mode, error: failure, tool: ONE_SHOT_MODE });
        }
        if (failure) throw brainFailure(failure);
        return { ...answerOf(cap, finish, taskCut(ctx.lang)), data: { usage, sessionId: brainSessionId } };
      },
    }),
  ];
}

/**
 * The turn to send. A conversation with a stored brain session continues it: the
 * brain resumes when the history holds an assistant turn, and gets only the new
 * user message, so the placeholder history is never sent to it.
 */
function history(core: Core, sessionKey: string, mode: ModeConfig, message: string): ChatMessage[] {
  if (!core.sessions.get(sessionKey, mode.id)) return [{ role: 'user', content: message }];
  return [
    { role: 'user', content: '(earlier turns of this conversation)' },
    { role: 'assistant', content: '(earlier answers)' },
    { role: 'user', content: message },
  ];
}

/**
 * A brain's answer as the tool's output. One cut at the brain's output limit (finish reason
 * `length`) is marked truncated and says so, or the calling model would take half an answer
 * for the whole of it.
 */
function answerOf(
  cap: OutputCap,
  finish: FinishReason | undefined,
  cutNote: string,
): Pick<ToolOutput, 'output' | 'truncated' | 'note'> {
  const { text, truncated } = cap.result();
  if (finish !== 'length') return { output: text, truncated };
  return { output: text, truncated: true, note: cutNote };
}

/** The notes of an answer cut at the brain's output limit: in English for a program or a model, in French to a reader in French (`/run`). */
const CLAUDE_CUT = {
  en: "the answer was cut at Claude's output-token limit (CLAUDE_CODE_MAX_OUTPUT_TOKENS in claude.env raises it).",
  fr: 'la réponse a été coupée à la limite de jetons de sortie de Claude (CLAUDE_CODE_MAX_OUTPUT_TOKENS dans claude.env la relève).',
};

/** A Claude conversation goes on from its session: the rest is one more message away. */
const claudeChatCut = (sessionKey: string, lang: Lang | undefined) =>
  t(
    lang,
    `${CLAUDE_CUT.en} Ask for the rest: brain_chat again with sessionKey "${sessionKey}" and a message such as "go on".`,
    `${CLAUDE_CUT.fr} Pour la suite : brain_chat à nouveau avec sessionKey "${sessionKey}" et un message comme « continue ».`,
  );

/** A local model's brain_chat is sent only the new message, so "go on" alone would mean nothing to it. */
const localChatCut = (lang: Lang | undefined) =>
  t(
    lang,
    "the answer was cut at the local model's output limit (llama-server's --n-predict, or its context size). Ask for a shorter answer, or for the rest in a message that quotes where this one stops.",
    'la réponse a été coupée à la limite de sortie du modèle local (--n-predict de llama-server, ou sa taille de contexte). Demandez une réponse plus courte, ou la suite dans un message qui cite où celle-ci s’arrête.',
  );

/** A one-shot task has no session to go on from. */
const taskCut = (lang: Lang | undefined) =>
  t(
    lang,
    `${CLAUDE_CUT.en} A one-shot task cannot be continued: ask for less in one task, or split it.`,
    `${CLAUDE_CUT.fr} Une tâche ponctuelle ne peut pas être continuée : demandez moins en une tâche, ou découpez-la.`,
  );

/**
 * A brain's failure as the tool's error: the endpoint's (src/brain-failure.ts), its status and
 * Retry-After included, so /api answers a loading model or a limit as /v1 does; a turn its caller
 * stopped is the tool's call stopped.
 */
function brainFailure(e: BrainError): BrainstemError {
  return e.kind === 'aborted' ? new BrainstemError('TOOL_ABORTED', e.message) : endpointFailure(e);
}
