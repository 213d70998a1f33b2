import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { t } from '../../src/i18n.js';
import type { Logger } from '../../src/logger.js';
import { PROXY_TAG } from '../../src/notices.js';
import { shorten } from '../../src/text.js';
import {
  type ApprovalDecision,
  ApprovalQuestionGone,
  type ApprovalRequest,
  type ApprovalSource,
  type ApprovalWithdrawn,
  type Approver,
  type TurnEvent,
  type TurnRequest,
} from '../types.js';
import { subject, summarize } from './approval-summary.js';
import { formatDuration } from './errors.js';
import type { PermissionAnswer } from './stdin.js';

/**
 * Answers the CLI's permission requests (tools outside the mode's allow-list)
 * by asking the turn's approver, within a time limit. Every request ends in
 * exactly one `approval` event, for the audit log.
 *
 * "Allow for this session" is remembered per conversation, for what the
 * question showed (see grantKey): a grant by tool name would allow any
 * command, any make target, any file read, any URL fetched.
 */

const NOTICE_SUMMARY_MAX = 120;

export interface PermissionRequest {
  requestId: string;
  tool: string;
  input: Record<string, unknown>;
}

type Asked =
  | { kind: 'decided'; decision: ApprovalDecision }
  | { kind: 'timeout' }
  | { kind: 'cancelled' }
  | { kind: 'failed'; err: unknown };

export class Approvals {
  /** Conversation → what was allowed for the rest of it. */
  private readonly grants = new Map<string, Set<string>>();

  constructor(
    private readonly o: {
      mode: string;
      timeoutMs: number;
      log: Logger;
      /** Why brainstem would refuse this call anyway (McpOptions.refusal), for its own tools. */
      refusal?: (
        tool: string,
        input: Record<string, unknown>,
      ) => { message: string; fr?: string } | undefined;
    },
  ) {}

  forget(sessionKey: string): void {
    this.grants.delete(sessionKey);
  }

  /** What was allowed "for this session" goes on with the conversation under its new key. */
  move(sessionKey: string, to: string): void {
    const granted = this.grants.get(sessionKey);
    if (granted === undefined) return;
    this.grants.delete(sessionKey);
    this.grants.set(to, new Set([...(this.grants.get(to) ?? []), ...granted]));
  }

  /**
   * Decides one request; never throws. `signal` aborts when the CLI withdraws it or the turn stops;
   * aborted already (asked after the turn stopped, before the CLI saw it), nobody is asked.
   */
  async decide(
    turn: TurnRequest,
    p: PermissionRequest,
    signal: AbortSignal,
    emit: (ev: TurnEvent) => void,
  ): Promise<PermissionAnswer> {
    const request: ApprovalRequest = {
      id: p.requestId,
      sessionKey: turn.sessionKey,
      mode: this.o.mode,
      tool: p.tool,
      input: p.input,
      summary: summarize(p.tool, p.input),
    };
    const started = Date.now();
    const settle = (decision: ApprovalDecision, source: ApprovalSource): PermissionAnswer => {
      emit({ type: 'approval', request, decision, source, waitedMs: Date.now() - started });
      this.o.log.info(
        { sessionKey: turn.sessionKey, tool: p.tool, behavior: decision.behavior, source },
        'tool approval',
      );
      return decision.behavior === 'allow'
        ? { behavior: 'allow', updatedInput: p.input }
        : { behavior: 'deny', message: decision.message };
    };
    if (signal.aborted) return settle(STOPPED, 'cancelled');
    // A notice names what was asked about (the command, the file), not a file's new content.
    const what = `${p.tool} (${shorten(subject(p.tool, p.input), NOTICE_SUMMARY_MAX)})`;
    const grant = grantKey(p.tool, p.input);

    // A call brainstem refuses whatever the answer (a make target not allowed, a tool not set up):
    // asking would have the approver "allow" what then fails, and Claude wait for nothing.
    const refused = this.o.refusal?.(p.tool, p.input);
    if (refused) {
      const fr = refused.fr ?? refused.message;
      emit({
        type: 'notice',
        text: t(
          turn.lang,
          `${PROXY_TAG} Claude wanted to use ${what}, which brainstem refuses, so nobody was asked: ${refused.message}`,
          `${PROXY_TAG} Claude voulait utiliser ${what}, que brainstem refuse, donc personne n’a été sollicité : ${fr}`,
        ),
      });
      return settle(
        deny(
          `brainstem refuses this call of ${p.tool}, so nobody was asked to approve it: ${refused.message}`,
        ),
        'refused',
      );
    }

    if (this.grants.get(turn.sessionKey)?.has(grant))
      return settle({ behavior: 'allow', scope: 'session' }, 'session');
    if (await sentByTheUser(turn.uploads, p)) return settle({ behavior: 'allow', scope: 'once' }, 'uploads');
    if (!turn.approve) {
      emit({
        type: 'notice',
        text: t(
          turn.lang,
          `${PROXY_TAG} Claude wanted to use ${what}, which needs approval; approvals are not available for this turn, so it was denied.`,
          `${PROXY_TAG} Claude voulait utiliser ${what}, qui demande une approbation ; les approbations ne sont pas disponibles pour ce tour, donc c’est refusé.`,
        ),
      });
      return settle(
        deny(`Permission to use ${p.tool} was denied: tool approvals are not available for this turn.`),
        'unavailable',
      );
    }

    emit({ type: 'approval_pending', request });
    const asked = await ask(turn.approve, request, signal, this.o.timeoutMs);
    switch (asked.kind) {
      case 'decided':
        if (asked.decision.behavior === 'allow' && asked.decision.scope === 'session') {
          const granted = this.grants.get(turn.sessionKey) ?? new Set<string>();
          granted.add(grant);
          this.grants.set(turn.sessionKey, granted);
        }
        return settle(asked.decision, 'approver');
      case 'timeout': {
        const limit = formatDuration(this.o.timeoutMs);
        emit({
          type: 'notice',
          text: t(
            turn.lang,
            `${PROXY_TAG} Nobody answered the approval request for ${what} within ${limit}, so it was denied.`,
            `${PROXY_TAG} Personne n’a répondu à la demande d’approbation pour ${what} en ${limit}, donc c’est refusé.`,
          ),
        });
        return settle(
          deny(
            `Permission to use ${p.tool} was denied: nobody answered the approval request within ${limit}.`,
          ),
          'timeout',
        );
      }
      case 'failed': {
        const gone = asked.err instanceof ApprovalQuestionGone ? asked.err : undefined;
        if (gone) {
          this.o.log.warn({ tool: p.tool, why: gone.message }, 'the approval question is gone');
          emit({
            type: 'notice',
            text: t(
              turn.lang,
              `${PROXY_TAG} The approval request for ${what} can no longer be answered (${gone.message}), so it was denied.`,
              `${PROXY_TAG} La demande d’approbation pour ${what} ne peut plus recevoir de réponse (${gone.fr}), donc c’est refusé.`,
            ),
          });
          return settle(deny(`Permission to use ${p.tool} was denied: ${gone.message}.`), 'failed');
        }
        this.o.log.error({ err: asked.err, tool: p.tool }, 'the approver failed');
        emit({
          type: 'notice',
          text: t(
            turn.lang,
            `${PROXY_TAG} The approval request for ${what} could not be asked, so it was denied.`,
            `${PROXY_TAG} La demande d’approbation pour ${what} n’a pas pu être posée, donc c’est refusé.`,
          ),
        });
        return settle(
          deny(`Permission to use ${p.tool} was denied: the approval request could not be asked.`),
          'failed',
        );
      }
      case 'cancelled':
        // The CLI withdrew the request or the turn stopped: this answer is never sent.
        return settle(STOPPED, 'cancelled');
    }
  }
}

/** Asks the approver; it is told (through its signal) when the answer is no longer wanted. */
async function ask(
  approve: Approver,
  request: ApprovalRequest,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<Asked> {
  const unwanted = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let onAbort = () => {};
  const timedOut = new Promise<Asked>((resolve) => {
    timer = setTimeout(() => resolve({ kind: 'timeout' }), timeoutMs);
  });
  const cancelled = new Promise<Asked>((resolve) => {
    onAbort = () => resolve({ kind: 'cancelled' });
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  const answered = Promise.resolve()
    .then(() => approve(request, unwanted.signal))
    .then(
      (decision): Asked => ({ kind: 'decided', decision }),
      (err: unknown): Asked => ({ kind: 'failed', err }),
    );
  try {
    const asked = await Promise.race([answered, timedOut, cancelled]);
    if (asked.kind !== 'decided') unwanted.abort(withdrawn(asked.kind));
    return asked;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
  }
}

const withdrawn = (kind: Exclude<Asked['kind'], 'decided'>): ApprovalWithdrawn =>
  kind === 'timeout' ? 'timeout' : 'stopped';

const deny = (message: string): ApprovalDecision => ({ behavior: 'deny', message });

const STOPPED = deny('The turn was stopped before the approval was answered.');

/** Built-in tools that only read and send nothing out: "for this session" allows any use of them. */
const ANY_USE = new Set(['WebSearch']);
/**
 * Built-in tools whose "for this session" covers the one thing the question showed: the command,
 * the file written or read, the folder listed. A read is no lesser grant: one file outside the project
 * allowed must not let Claude read every other (keys, credentials, brainstem's token) unasked.
 * A file is granted whatever the change: the question shows one change, and a grant for that
 * change alone would ask again at each next edit of the file, which is what the once is for.
 */
const SHOWN_INPUT = new Map([
  ['Bash', 'command'],
  ['Write', 'file_path'],
  ['Edit', 'file_path'],
  ['MultiEdit', 'file_path'],
  ['NotebookEdit', 'notebook_path'],
  ['Read', 'file_path'],
  ['NotebookRead', 'notebook_path'],
  ['LS', 'path'],
]);

/**
 * Whether the request reads a file the conversation's users sent (TurnRequest.uploads): the CLI
 * asks for any Read outside its cwd, and the user who sent a PDF for Claude to read must not be
 * asked whether it may. Resolved with realpath, so a link there to anything else is asked about.
 */
async function sentByTheUser(uploads: string | undefined, p: PermissionRequest): Promise<boolean> {
  const file = p.input.file_path;
  if (!uploads || p.tool !== 'Read' || typeof file !== 'string' || !path.isAbsolute(file)) return false;
  const [root, real] = await Promise.all([realpath(uploads), realpath(file)]).catch(() => []);
  return root !== undefined && real?.startsWith(root + path.sep) === true;
}

/**
 * What an "allow for this session" covers: what the person was shown (the
 * command, the file, the web site), so a grant never reaches further than the
 * question did. WebFetch is allowed again on the same site only: a fetch sends
 * what its URL holds to that site, and may reach a loopback or LAN address.
 * Any other tool (Glob and Grep, whose question shows the pattern; brainstem's)
 * is allowed again for the same input only.
 */
function grantKey(tool: string, input: Record<string, unknown>): string {
  if (ANY_USE.has(tool)) return tool;
  if (tool === 'WebFetch' && typeof input.url === 'string') {
    const site = URL.canParse(input.url) ? new URL(input.url).origin : input.url;
    return `${tool}:${site}`;
  }
  const field = SHOWN_INPUT.get(tool);
  const shown = field && input[field];
  if (typeof shown === 'string') return `${tool}:${shown}`;
  return `${tool}:${JSON.stringify(input)}`;
}
