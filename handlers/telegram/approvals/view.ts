import { InlineKeyboard } from 'grammy';
import { z } from 'zod';
import type { ApprovalDecision, ApprovalRequest } from '../../../brains/types.js';
import { formatDuration, type Lang, t } from '../../../src/i18n.js';
import { PROXY_TAG } from '../../../src/notices.js';
import { shorten } from '../../../src/text.js';
import { OWN_DATA_PREFIX, ownData } from '../commands/callback-data.js';
import { shownLength } from '../format/fit.js';
import { escapeHtml } from '../format/render.js';
import { TELEGRAM_LIMIT } from '../format/split.js';
import { fitted } from '../send/output.js';
import { fitQuestion, revealHidden } from '../views/tool.js';

/** What an approver can answer. */
export type Choice = 'once' | 'session' | 'deny';

/**
 * Button data: `bs:apv:<prompt id>:once|session|deny` (the CLI's request ids
 * are too long for the 64 bytes allowed). A prompt id is `<run>-<n>`: `run`
 * is drawn at each start, so a button left from before a restart never names
 * a question asked after it.
 */
export const pressSchema = z
  .string()
  .regex(ownData('apv:[0-9a-f]{8}-\\d{1,12}:(?:once|session|deny)$'))
  .transform((data) => {
    const [, , id = '', choice] = data.split(':');
    return { id, choice: choice as Choice };
  });
export const APPROVAL_DATA = ownData('apv:');

/** Bash's own explanation of its command, when the model gave one. */
const DESCRIPTION_MAX = 200;
/** The most of a tool's name shown (the CLI's names are short; this one comes from outside). */
const TOOL_MAX = 100;

/**
 * The question: the tool, what it would do (the brain's summary: the command,
 * the file and the change written to it, the URL…), and, for a turn that came from elsewhere (the OpenAI
 * endpoint), which conversation asks. Every dynamic part escaped. The summary
 * is shown whole while the question fits one message; past that, its start,
 * and how much is left out (fitQuestion): the approver allows all of it.
 */
export function promptHtml(
  req: ApprovalRequest,
  lang: Lang,
  showSession: boolean,
  /** A last line (HTML), counted in what must fit. */
  footer?: string,
): string {
  const description = typeof req.input.description === 'string' ? req.input.description.trim() : '';
  const tool = escapeHtml(shorten(req.tool, TOOL_MAX));
  // The same words in French.
  const where = showSession
    ? ` (mode <b>${escapeHtml(req.mode)}</b>, conversation <code>${escapeHtml(req.sessionKey)}</code>)`
    : '';
  return fitQuestion(req.summary, (summary, omitted) =>
    [
      t(
        lang,
        `${PROXY_TAG} 🔐 Claude wants to use <b>${tool}</b>${where}:`,
        `${PROXY_TAG} 🔐 Claude veut utiliser <b>${tool}</b>${where} :`,
      ),
      `<pre>${escapeHtml(summary)}</pre>`,
      ...(omitted > 0
        ? [
            `<i>${t(
              lang,
              `Only the start is shown: ${omitted} more characters are not. Allowing allows all of it.`,
              `Seul le début est affiché : ${omitted} caractères de plus ne le sont pas. Autoriser autorise le tout.`,
            )}</i>`,
          ]
        : []),
      ...(description ? [`<i>${escapeHtml(shorten(revealHidden(description), DESCRIPTION_MAX))}</i>`] : []),
      ...(footer ? [footer] : []),
    ].join('\n'),
  );
}

export function promptKeyboard(id: string, lang: Lang): InlineKeyboard {
  return new InlineKeyboard()
    .text(t(lang, '✅ Allow once', '✅ Autoriser une fois'), `${OWN_DATA_PREFIX}apv:${id}:once`)
    .row()
    .text(
      t(lang, '♾️ Allow for this session', '♾️ Autoriser pour cette session'),
      `${OWN_DATA_PREFIX}apv:${id}:session`,
    )
    .row()
    .text(t(lang, '✖️ Deny', '✖️ Refuser'), `${OWN_DATA_PREFIX}apv:${id}:deny`);
}

/** What the question says once decided, by whom (a Telegram first name, escaped where shown). */
export function decidedText(choice: Choice, by: string, lang: Lang): string {
  switch (choice) {
    case 'once':
      return t(lang, `✅ Allowed once by ${by}.`, `✅ Autorisé une fois par ${by}.`);
    case 'session':
      return t(lang, `✅ Allowed for this session by ${by}.`, `✅ Autorisé pour cette session par ${by}.`);
    case 'deny':
      return t(lang, `✖️ Denied by ${by}.`, `✖️ Refusé par ${by}.`);
  }
}

/** Why a question closed without an answer. */
export type Unanswered = 'timeout' | 'stopped' | 'restarting' | 'unreachable' | 'deleted' | 'shut';

export function unansweredText(why: Unanswered, timeoutMs: number, lang: Lang): string {
  switch (why) {
    case 'timeout':
      return t(
        lang,
        `⌛ No answer within ${formatDuration(timeoutMs)}: denied.`,
        `⌛ Pas de réponse en ${formatDuration(timeoutMs)} : refusé.`,
      );
    case 'stopped':
      return t(
        lang,
        '⏹ The answer stopped before a decision: nothing ran.',
        '⏹ La réponse s’est arrêtée avant une décision : rien n’a été lancé.',
      );
    case 'restarting':
      return t(
        lang,
        '⏹ brainstem is restarting: this question is closed.',
        '⏹ brainstem redémarre : cette question est close.',
      );
    case 'unreachable':
      return t(
        lang,
        '⚠️ No approver could be asked: denied.',
        '⚠️ Aucun approbateur n’a pu être sollicité : refusé.',
      );
    case 'deleted':
      return t(
        lang,
        '⚠️ The question was deleted where approvers could answer it: denied.',
        '⚠️ La question a été supprimée là où les approbateurs pouvaient y répondre : refusé.',
      );
    case 'shut':
      return t(
        lang,
        '⚠️ Telegram no longer lets the bot where approvers could answer this question (blocked or removed there): denied.',
        '⚠️ Telegram ne laisse plus le bot là où les approbateurs pouvaient répondre à cette question (bloqué ou retiré) : refusé.',
      );
  }
}

/** Under the question in the asker's own chat when they cannot answer it themselves (HTML). */
export function askedOfApprovers(lang: Lang): string {
  return `<i>${t(
    lang,
    'Only an approver can answer: each was asked in their own chat with the bot. Their answer shows here.',
    'Seul un approbateur peut répondre : chacun a reçu la question dans sa conversation avec le bot. Sa réponse s’affichera ici.',
  )}</i>`;
}

/**
 * The question with its outcome below it (the buttons go with the edit). The outcome is what the
 * edit is for: when both do not fit one message, the question gives way (its room for the outcome,
 * QUESTION_LIMIT, was taken by the line saying why it came outside its closed topic).
 */
export function closedHtml(question: string, outcome: string, lang: Lang): string {
  const below = `\n\n<b>${escapeHtml(outcome)}</b>`;
  return `${fitted(question, lang, TELEGRAM_LIMIT - shownLength(below))}${below}`;
}

/** The line the streamed answer shows while the turn waits for a decision. */
export function waitingLine(req: ApprovalRequest, lang: Lang): string {
  return t(
    lang,
    `⏳ Waiting for approval to use \`${req.tool}\`…`,
    `⏳ En attente d’approbation pour \`${req.tool}\`…`,
  );
}

/** The line that replaces the wait once the question is answered (see answerTurn). */
export function answeredLine(req: ApprovalRequest, decision: ApprovalDecision, lang: Lang): string {
  return decision.behavior === 'allow'
    ? t(lang, `⏳ Running \`${req.tool}\`…`, `⏳ \`${req.tool}\` en cours…`)
    : t(lang, `⏳ \`${req.tool}\` denied; Claude goes on…`, `⏳ \`${req.tool}\` refusé ; Claude continue…`);
}
