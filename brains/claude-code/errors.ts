import { loginCommand } from '../../src/credentials.js';
import { type Lang, type Said, t } from '../../src/i18n.js';
import { PROXY_TAG } from '../../src/notices.js';
import { scrubText } from '../../src/redact.js';
import { shorten } from '../../src/text.js';
import type { BrainError } from '../types.js';
import { USAGE_LIMIT_TEXT } from './cli-compat.js';
import type { CliResult, RateLimitInfo } from './stream-json.js';

/**
 * Turns what a failed CLI run left behind into a BrainError a person can act
 * on. Every message starts with the proxy tag (it is brainstem speaking, not
 * Claude), holds no secret and no stack trace.
 */

/** What the CLI said about a failure, gathered while reading its output. */
export interface FailureSignals {
  result?: CliResult;
  /** The last `rate_limit_event` whose status was "rejected". */
  rateLimit?: RateLimitInfo;
  /** `error` of a synthetic assistant message, e.g. "authentication_failed", "rate_limit". */
  apiError?: string;
  exitCode?: number;
  signal?: string;
  stderr: string;
}

const AUTH_TEXT =
  /invalid api key|oauth token (has expired|revoked)|authentication_failed|failed to authenticate|not logged in/i;
/** The CLI's text when usage credits are refused as spent (see isCreditSpent). */
const CREDIT_SPENT_TEXT = /out of usage credits|agent sdk credit/i;
/** `result.subtype` when `--max-budget-usd` stopped the turn (text: "Reached maximum budget ($0.01)"). */
const MAX_BUDGET_SUBTYPE = 'error_max_budget_usd';
const MISSING_SESSION = 'No conversation found with session ID';
/**
 * The API's refusal of a request over the model's context ("prompt is too
 * long: 210000 tokens > 200000 maximum"). A CLI with history to compact
 * summarises it and sends the turn again (2.1.197, seen through OpenClaw);
 * when that cannot help, CLIs 2.1.197 and 2.1.332 end the turn with "Prompt
 * is too long" (`api_error_status: 400`), 2.1.332 after four truncated retries.
 */
const PROMPT_TOO_LONG_TEXT = /prompt is too long/i;
/** The CLI's words for a 429 on subscription credentials that is not a usage limit (see classifyFailure). */
const NOT_USAGE_LIMIT_TEXT = /not your usage limit/i;
/**
 * An answer that stopped at the model's context window (`stop_reason:
 * model_context_window_exceeded`): CLIs 2.1.197 and 2.1.332 ask the model to
 * go on three times, as after the output-token limit, then end the turn with
 * "API Error: The model has reached its context window limit." (no status).
 * The same overflow: the session holds more than the context can take.
 */
const CONTEXT_WINDOW_TEXT = /model has reached its context window limit/i;

/**
 * The `error` of the synthetic assistant message with which CLIs 2.1.197 and
 * 2.1.332 give up on an answer that keeps stopping at the output-token limit
 * (`stop_reason: max_tokens`): after asking the model to go on three times,
 * the CLI ends the turn `is_error` with "API Error: Claude's response exceeded
 * the 64000 output token maximum. To configure this behavior, set the
 * CLAUDE_CODE_MAX_OUTPUT_TOKENS environment variable." (no status).
 */
const OUTPUT_LIMIT_ERROR = 'max_output_tokens';

/**
 * What renews the refused credentials, by where the CLI took them from (credentialsFromEnv over the
 * environment it ran with; undefined: /login's file, in `configDir` when the CLI ran with a
 * CLAUDE_CONFIG_DIR). Claude Code uses a key or token in its environment before any login, so "run
 * `claude /login`" would leave an API key's turns failing; and a login made without that config dir
 * goes to ~/.claude, which this CLI does not read.
 */
export function renewHelp(variable: string | undefined, configDir?: string): Record<Lang, string> {
  switch (variable) {
    case 'ANTHROPIC_API_KEY':
    case 'ANTHROPIC_AUTH_TOKEN':
      return {
        en: `They come from ${variable}, which Claude Code uses before any login: put a valid one where it is set (claude.env, the mode's env or brainstem's environment), or blank it there to use the login; then send /creds to check.`,
        fr: `Ils viennent de ${variable}, que Claude Code utilise avant toute connexion : mettez-en un valide là où il est réglé (claude.env, l’env du mode ou l’environnement de brainstem), ou videz-le pour utiliser la connexion ; puis envoyez /creds pour vérifier.`,
      };
    case 'CLAUDE_CODE_OAUTH_TOKEN':
      return {
        en: 'They come from CLAUDE_CODE_OAUTH_TOKEN: on the host run `claude setup-token` and set the new token where that variable is set; then send /creds to check.',
        fr: 'Ils viennent de CLAUDE_CODE_OAUTH_TOKEN : sur l’hôte, lancez `claude setup-token` et réglez le nouveau jeton là où cette variable est réglée ; puis envoyez /creds pour vérifier.',
      };
    case 'CLAUDE_CODE_USE_BEDROCK':
    case 'CLAUDE_CODE_USE_VERTEX': {
      const cloud = variable === 'CLAUDE_CODE_USE_BEDROCK' ? 'AWS (Bedrock)' : 'Google Cloud (Vertex)';
      return {
        en: `Claude Code runs on ${cloud} (${variable}): renew that account's credentials on the host; then send /creds to check.`,
        fr: `Claude Code tourne sur ${cloud} (${variable}) : renouvelez les identifiants de ce compte sur l’hôte ; puis envoyez /creds pour vérifier.`,
      };
    }
    default: {
      if (configDir) {
        const cli = loginCommand(configDir);
        return {
          en: `To renew them on the host run \`${cli}\` and /login there (that config dir is this mode's), or \`${cli} setup-token\` and set CLAUDE_CODE_OAUTH_TOKEN; then send /creds to check.`,
          fr: `Pour les renouveler sur l’hôte, lancez \`${cli}\` puis /login (ce dossier de config est celui du mode), ou \`${cli} setup-token\` et réglez CLAUDE_CODE_OAUTH_TOKEN ; puis envoyez /creds pour vérifier.`,
        };
      }
      return {
        en: 'To renew them on the host run `claude /login`, or `claude setup-token` and set CLAUDE_CODE_OAUTH_TOKEN; then send /creds to check.',
        fr: 'Pour les renouveler sur l’hôte, lancez `claude /login`, ou `claude setup-token` et réglez CLAUDE_CODE_OAUTH_TOKEN ; puis envoyez /creds pour vérifier.',
      };
    }
  }
}

/** True when a `--resume` failed only because the CLI does not know the session (any more). */
export function isMissingSession(s: FailureSignals): boolean {
  return [...(s.result?.errors ?? []), s.result?.text ?? '', s.stderr].some((t) =>
    t.includes(MISSING_SESSION),
  );
}

/**
 * Whether the CLI says the monthly Agent SDK credit is spent. The one place
 * that recognises it; everything else asks this.
 *
 * Known (CLI 2.1.197 against the fake API, OAuth credentials): on a 429 with
 * `anthropic-ratelimit-unified-status: rejected`,
 * `anthropic-ratelimit-unified-overage-status: rejected` and
 * `anthropic-ratelimit-unified-overage-disabled-reason: out_of_credits`
 * (`-representative-claim: overage` optional), the CLI writes
 *   {"type":"rate_limit_event","rate_limit_info":{"status":"rejected",
 *    "rateLimitType":"overage","overageStatus":"rejected",
 *    "overageDisabledReason":"out_of_credits","resetsAt":…,"overageResetsAt":…}}
 * then the text "You're out of usage credits · resets Dec 11, 10:07pm (UTC)"
 * (`result.is_error: true`, `api_error_status: 429`). Its schema for
 * `rateLimitType` has `overage`, and `overageDisabledReason` has `out_of_credits`.
 * With `rateLimitType` a subscription window (`five_hour`, `seven_day`…) the
 * same refusal is that window's limit, not the credit.
 *
 * Assumed: that Anthropic's API refuses a spent Agent SDK credit with these
 * headers. 2.1.197 has no text of its own for the Agent SDK credit, and the
 * credit never took effect (Anthropic paused it on 15 June 2026), so no real
 * refusal has been seen. The text is a fallback for a CLI that drops the event.
 */
export function isCreditSpent(s: Pick<FailureSignals, 'rateLimit' | 'result'>): boolean {
  const info = s.rateLimit;
  if (info) {
    // A subscription window (five_hour, seven_day…) refused with no credits left is that window's limit.
    const window = info.limitType !== undefined && info.limitType !== 'overage';
    return (
      info.status === 'rejected' &&
      !window &&
      (info.overageDisabledReason === 'out_of_credits' || info.overageStatus === 'rejected')
    );
  }
  return CREDIT_SPENT_TEXT.test(s.result?.text ?? '');
}

/**
 * Whether the CLI ended the turn because the answer kept reaching the
 * output-token limit. No failure: the answer so far is the answer, cut at its
 * length (OpenAI's `finish_reason: "length"`), as a llama mode's is.
 */
export function isOutputCut(s: Pick<FailureSignals, 'apiError' | 'result'>): boolean {
  // The CLI gives up on an answer stopped at the context window with the same error: that is an overflow.
  return s.apiError === OUTPUT_LIMIT_ERROR && !CONTEXT_WINDOW_TEXT.test(s.result?.text ?? '');
}

/** Told to a person (Telegram), who sees no finish reason; an HTTP client has `finish_reason: "length"`. */
export function outputCutNotice(lang: Lang | undefined): string {
  return t(
    lang,
    `${PROXY_TAG} Claude's answer was cut: it kept reaching the output-token limit. Ask it to go on, or raise the limit with CLAUDE_CODE_MAX_OUTPUT_TOKENS in claude.env.`,
    `${PROXY_TAG} La réponse de Claude a été coupée : elle atteignait sans cesse la limite de jetons de sortie. Demandez-lui de continuer, ou relevez la limite avec CLAUDE_CODE_MAX_OUTPUT_TOKENS dans claude.env.`,
  );
}

/**
 * Whether Claude's safety classifier stopped the answer (`stop_reason:
 * refusal`): CLIs 2.1.197 and 2.1.332 (the latter after one retry) end the
 * turn `is_error` with "API Error: Claude Code is unable to respond to this
 * request, which appears to violate our Usage Policy…" (no status). No
 * failure of the service: the answer so far is the answer, withheld from
 * there on (OpenAI's `finish_reason: "content_filter"`, which clients do not
 * retry; a 502 the openai SDK sends twice more, each one billed and refused).
 */
export function isRefusal(s: Pick<FailureSignals, 'result'>): boolean {
  return s.result?.stopReason === 'refusal';
}

/** Told to a person (Telegram), who sees no finish reason; an HTTP client has `finish_reason: "content_filter"`. */
export function refusalNotice(lang: Lang | undefined): string {
  return t(
    lang,
    `${PROXY_TAG} Claude's safety classifier stopped this answer (Anthropic's usage policy); the rest of it was withheld. Rephrase the request, or start a new conversation with /new.`,
    `${PROXY_TAG} Le classifieur de sécurité de Claude a arrêté cette réponse (règles d’usage d’Anthropic) ; la suite n’a pas été donnée. Reformulez la demande, ou commencez une nouvelle conversation avec /new.`,
  );
}

/** `credentials`: the variable the CLI took its credentials from (credentialsFromEnv), if any. */
export function classifyFailure(s: FailureSignals, credentials?: string, configDir?: string): BrainError {
  const status = s.result?.status;
  const text = [s.result?.text, ...(s.result?.errors ?? [])].filter(Boolean).join(' · ');
  if (s.result?.subtype === MAX_BUDGET_SUBTYPE) {
    return {
      kind: 'usage_limit',
      limit: 'turn_budget',
      message: `${PROXY_TAG} This turn reached its spending cap (${shortReason(text) || '--max-budget-usd'}) and was stopped.`,
      fr: `${PROXY_TAG} Ce tour a atteint son plafond de dépense (${shortReason(text) || '--max-budget-usd'}) et a été arrêté.`,
    };
  }
  if (isCreditSpent(s)) {
    const resetsAt = s.rateLimit?.overageResetsAt ?? s.rateLimit?.resetsAt;
    const when = (lang: Lang) =>
      resetsAt === undefined
        ? t(lang, 'the reset time is unknown', 'l’heure de renouvellement est inconnue')
        : t(lang, `it resets at ${formatUtc(resetsAt)} UTC`, `il se renouvelle à ${formatUtc(resetsAt)} UTC`);
    return {
      kind: 'usage_limit',
      limit: 'credit',
      status: status ?? 429,
      resetsAt,
      message: `${PROXY_TAG} Claude's monthly Agent SDK credit is spent; ${when('en')}.`,
      fr: `${PROXY_TAG} Le crédit mensuel Agent SDK de Claude est épuisé ; ${when('fr')}.`,
    };
  }
  // On subscription credentials a plain 429 (the API throttling, no unified limit headers) comes as a
  // rejected rate_limit_event with no window nor reset, and the words "not your usage limit"
  // (2.1.197): a moment's wait, not the subscription's limit with its notice and fallback.
  if (NOT_USAGE_LIMIT_TEXT.test(text) && s.rateLimit?.limitType === undefined) return throttled(status);
  if (s.rateLimit?.status === 'rejected' || USAGE_LIMIT_TEXT.test(text)) {
    return usageLimitError(s.rateLimit, status);
  }
  if (status === 401 || status === 403 || s.apiError === 'authentication_failed' || AUTH_TEXT.test(text)) {
    return {
      kind: 'auth',
      status,
      message: `${PROXY_TAG} Claude refused its credentials (${shortReason(text) || `HTTP ${status ?? '?'}`}). ${renewHelp(credentials, configDir).en}`,
      fr: `${PROXY_TAG} Claude a refusé ses identifiants (${shortReason(text) || `HTTP ${status ?? '?'}`}). ${renewHelp(credentials, configDir).fr}`,
    };
  }
  if (PROMPT_TOO_LONG_TEXT.test(text) || CONTEXT_WINDOW_TEXT.test(text)) {
    // "Prompt is too long" stays in the message: OpenClaw reads it as an overflow and compacts.
    const detail = shortReason(text.replace(/prompt is too long[\s·:.]*/gi, '').replace(/[\s·.]+$/, ''));
    return {
      kind: 'context_overflow',
      status,
      message: `${PROXY_TAG} Prompt is too long for Claude's context${detail ? ` (${detail})` : ''}. The Claude session of this conversation is closed, since it keeps the turn that did not fit; the next message starts a new session from the conversation's latest turns. A message too long on its own must be shortened.`,
      fr: `${PROXY_TAG} La demande est trop longue pour le contexte de Claude${detail ? ` (${detail})` : ''}. La session Claude de cette conversation est fermée, puisqu’elle garde le tour qui n’y tenait pas ; le prochain message ouvre une nouvelle session à partir des derniers tours de la conversation. Un message trop long à lui seul doit être raccourci.`,
    };
  }
  if (status === 429 || s.apiError === 'rate_limit') return throttled(status);
  if (s.result) {
    return {
      kind: 'upstream_error',
      status,
      message: `${PROXY_TAG} Claude Code failed: ${shortReason(text) || 'no reason given'}`,
      fr: `${PROXY_TAG} Claude Code a échoué : ${shortReason(text) || 'aucune raison donnée'}`,
    };
  }
  return {
    kind: 'upstream_error',
    message: `${PROXY_TAG} Claude Code stopped without an answer (${exitReason(s, 'en')}).`,
    fr: `${PROXY_TAG} Claude Code s’est arrêté sans répondre (${exitReason(s, 'fr')}).`,
  };
}

/**
 * Claude's API refusing requests for now. The CLI says nothing of when it takes them again (it
 * drops the API's retry-after), so the error has no reset time and the client no Retry-After.
 */
function throttled(status: number | undefined): BrainError {
  return {
    kind: 'rate_limit',
    status: status ?? 429,
    message: `${PROXY_TAG} Claude's API is limiting requests right now (429); try again in a moment.`,
    fr: `${PROXY_TAG} L’API de Claude limite les requêtes en ce moment (429) ; réessayez dans un instant.`,
  };
}

function usageLimitError(info: RateLimitInfo | undefined, status: number | undefined): BrainError {
  const which = (lang: Lang) => limitName(info?.limitType, lang);
  const when = (lang: Lang) =>
    info?.resetsAt === undefined
      ? t(lang, 'the reset time is unknown', 'l’heure de réinitialisation est inconnue')
      : t(
          lang,
          `it resets at ${formatUtc(info.resetsAt)} UTC`,
          `réinitialisation à ${formatUtc(info.resetsAt)} UTC`,
        );
  return {
    kind: 'usage_limit',
    status: status ?? 429,
    resetsAt: info?.resetsAt,
    message: `${PROXY_TAG} Claude's subscription usage limit is reached (${which('en')}); ${when('en')}.`,
    fr: `${PROXY_TAG} La limite d’usage de l’abonnement Claude est atteinte (${which('fr')}) ; ${when('fr')}.`,
  };
}

function limitName(type: string | undefined, lang: Lang): string {
  switch (type) {
    case 'five_hour':
      return t(lang, '5-hour limit', 'limite de 5 heures');
    case 'seven_day':
      return t(lang, 'weekly limit', 'limite hebdomadaire');
    case 'seven_day_opus':
      return t(lang, 'weekly Opus limit', 'limite hebdomadaire Opus');
    case 'seven_day_sonnet':
      return t(lang, 'weekly Sonnet limit', 'limite hebdomadaire Sonnet');
    default:
      return type ? type.replaceAll('_', ' ') : t(lang, 'usage limit', 'limite d’usage');
  }
}

/** `2026-11-24 07:03`. */
function formatUtc(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace('T', ' ');
}

/** How the CLI ended, in brainstem's words for `lang` around its own (the signal, its stderr line). */
function exitReason(s: FailureSignals, lang: Lang): string {
  if (s.signal) return t(lang, `killed by ${s.signal}`, `tué par ${s.signal}`);
  const line = shortReason(s.stderr);
  const code =
    s.exitCode === undefined
      ? t(lang, 'no exit code', 'pas de code de sortie')
      : t(lang, `exit code ${s.exitCode}`, `code de sortie ${s.exitCode}`);
  return line ? `${code}${t(lang, ':', ' :')} ${line}` : code;
}

/** A thrown error's own line in a crash report: `TypeError: …`, `Error [ERR_X]: …`. */
const THROWN = /^[\w$.]*(Error|Exception)\b[^:]{0,40}:\s/;
/** A crash report's location line (`/path/cli.js:4`, `file:///…:4`): what follows is source code. */
const LOCATION = /^(file:\/\/|\/|[A-Za-z]:\\)\S*:\d+(:\d+)?$/;

/**
 * The first meaningful line of a CLI message, short and scrubbed: stack frames,
 * a crash report's location and code lines, and anything that looks like a key
 * or token never reach the user. Of a crash report, the error's own line.
 */
export function shortReason(text: string, max = 240): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !/^at\s/.test(l));
  const thrown = lines.find((l) => THROWN.test(l));
  const line = thrown ?? (lines.some((l) => LOCATION.test(l)) ? '' : (lines[0] ?? ''));
  return shorten(scrubText(line), max);
}

export function timeoutError(ms: number): BrainError {
  return {
    kind: 'upstream_error',
    message: `${PROXY_TAG} Claude Code was stopped after ${formatDuration(ms)} (the turn time limit, claude.turnTimeoutMs); the task may be unfinished.`,
    fr: `${PROXY_TAG} Claude Code a été arrêté au bout de ${formatDuration(ms)} (la durée limite d’un tour, claude.turnTimeoutMs) ; la tâche est peut-être inachevée.`,
    // Sent again, the turn would work as long again and be stopped the same way.
    noRetry: true,
  };
}

/** claude.maxProcesses CLI processes are running already (see ProcessCap for why this is a refusal). */
export function busyError(max: number): BrainError {
  return {
    kind: 'rate_limit',
    status: 429,
    message: `${PROXY_TAG} ${max} Claude Code process${max === 1 ? ' is' : 'es are'} running already, the most allowed (claude.maxProcesses); try again when one of the running answers has finished.`,
    fr: `${PROXY_TAG} ${max} processus Claude Code tourne${max === 1 ? '' : 'nt'} déjà, le maximum permis (claude.maxProcesses) ; réessayez quand l’une des réponses en cours sera finie.`,
  };
}

export function formatDuration(ms: number): string {
  if (ms < 60_000) return `${Math.round(ms / 1000)} s`;
  const minutes = Math.round(ms / 6_000) / 10;
  return `${minutes} minute${minutes === 1 ? '' : 's'}`;
}

export const abortedError: BrainError = {
  kind: 'aborted',
  message: `${PROXY_TAG} The turn was stopped.`,
  fr: `${PROXY_TAG} Le tour a été arrêté.`,
};

export const emptyPromptError: BrainError = {
  kind: 'bad_request',
  message: `${PROXY_TAG} There is no message to send to Claude.`,
  fr: `${PROXY_TAG} Il n’y a aucun message à envoyer à Claude.`,
};

/** The turn could not be set up (working directory, MCP config file). */
export function prepareError(err: unknown): BrainError {
  const detail = err instanceof Error ? err.message : String(err);
  return {
    kind: 'internal',
    message: `${PROXY_TAG} Claude Code could not be prepared: ${shortReason(detail)}`,
    fr: `${PROXY_TAG} Claude Code n’a pas pu être préparé : ${shortReason(detail)}`,
  };
}

/** The CLI could not be started at all. */
export function spawnError(bin: string, code: string | undefined, detail: string): BrainError {
  if (code === 'ENOENT') {
    const missing = notFound(bin);
    return { kind: 'upstream_down', message: `${PROXY_TAG} ${missing.en}`, fr: `${PROXY_TAG} ${missing.fr}` };
  }
  return {
    kind: 'upstream_down',
    message: `${PROXY_TAG} Claude Code could not be started: ${shortReason(detail)}`,
    fr: `${PROXY_TAG} Claude Code n’a pas pu être lancé : ${shortReason(detail)}`,
  };
}

export function notFound(bin: string): Said {
  return {
    en: `Claude Code CLI not found: "${bin}" (install it or set CLAUDE_BIN to its path).`,
    fr: `CLI Claude Code introuvable : « ${bin} » (installez-le, ou mettez son chemin dans CLAUDE_BIN).`,
  };
}
