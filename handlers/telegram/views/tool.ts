import { sayError } from '../../../src/errors.js';
import { formatDuration, type Lang, t } from '../../../src/i18n.js';
import { PROXY_TAG } from '../../../src/notices.js';
import { headChars, shorten, tailChars } from '../../../src/text.js';
import { describeCall, type ToolResult } from '../../../src/tools/index.js';
import { escapeHtml, htmlToPlain } from '../format/render.js';
import { TELEGRAM_LIMIT } from '../format/split.js';
import type { StopReason } from '../turns.js';

/**
 * What a tool call looks like in a chat: its title, the progress while it
 * runs (latest output lines, elapsed time) and the result (exit code,
 * duration, the output capped to fit a message, the rest as a file). HTML,
 * every dynamic part escaped.
 */

/** A call as the user asked for it: the shortcut word, if it came from one, and the tool call it stands for. */
export interface CallRequest {
  word?: string | undefined;
  tool: string;
  input: unknown;
}

/** Output lines shown while a call runs, and the most characters of one line. */
const PROGRESS_LINES = 15;
const LINE_CHARS = 160;
/** Output kept for the progress view (raw, before cleaning). */
const TAIL_CHARS = 8_000;
/** Output shown in the result message; more goes to a document. Leaves room for the header under 4096. */
const RESULT_CHARS = 3_000;

/** The call as text (`make deploy`, `git_log {"max":5}`): describeCall without the backticks it adds for Markdown. */
export const callText = (c: { tool: string; input: unknown }): string =>
  describeCall(c).replace(/^`|`$/g, '');

/** A call's input can be long (a brain_chat prompt): its title shows the start, the message stays under Telegram's size. */
const TITLE_CHARS = 200;
/** The most of an error message a result shows. */
const ERROR_CHARS = 500;

export function callTitle(c: CallRequest): string {
  const call = `<code>${escapeHtml(shorten(callText(c), TITLE_CHARS))}</code>`;
  return c.word ? `<b>${escapeHtml(c.word)}</b> → ${call}` : call;
}

/**
 * The most a question with buttons may show: Telegram's limit less room for
 * the outcome added below it when it closes (approvals/: the longest name who
 * answered, a first name of up to 64 characters).
 */
const QUESTION_LIMIT = TELEGRAM_LIMIT - 200;

/** What Telegram counts of a message: its text once the HTML is parsed, in UTF-16 code units (JS length). */
const shownLength = (html: string): number => htmlToPlain(html).length;

/**
 * Characters a reader cannot see, shown as their code (`⟨U+202E⟩`), in what a user approves: a
 * bidirectional control reorders the text after it as Telegram shows it (a model led by a page
 * could have `echo done && rm -rf ~ #` read as a harmless command followed by a comment), a
 * zero-width one hides where words join, a control character or line separator what follows.
 * Line feeds and tabs stay, and so does a zero-width joiner between two emoji (👩‍💻, 🏳️‍🌈): it
 * joins them into the one emoji the reader sees, and shown as its code it would split it.
 */
const HIDDEN =
  /(?!(?<=\p{Extended_Pictographic}[\uFE0F\p{Emoji_Modifier}]?)\u200D(?=\p{Extended_Pictographic}))[\p{Cf}\u2028\u2029]|(?![\n\t])\p{Cc}/gu;

export function revealHidden(text: string): string {
  return text.replace(
    HIDDEN,
    (c) => `⟨U+${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}⟩`,
  );
}

/**
 * A question with buttons around `text` (a call, a command), which the user must see to answer,
 * its hidden characters revealed (`whole`): `question(whole, 0)` while it fits one message
 * (QUESTION_LIMIT, counted as Telegram counts); past that, around the start of
 * `whole` and how many characters are left out, for the question to say so.
 */
export function fitQuestion(text: string, question: (shown: string, omitted: number) => string): string {
  const whole = revealHidden(text);
  const full = question(whole, 0);
  if (shownLength(full) <= QUESTION_LIMIT) return full;
  // The question around an empty text, its count as long as any it can hold: what is left is the text's.
  const room = QUESTION_LIMIT - shownLength(question('', whole.length));
  const head = headChars(whole, room - 1);
  return question(`${head}…`, whole.length - head.length);
}

/**
 * The question a mutating call asks before it runs ("Run make deploy?"). It
 * is the one place the user sees what they approve, so the call is shown
 * whole while it fits one message, not cut to a title's TITLE_CHARS; past
 * that, its start up to QUESTION_LIMIT, and the question says how much is
 * left out and that Confirm runs all of it. Every character of the call escaped.
 */
export function confirmHtml(c: CallRequest, lang: Lang): string {
  return fitQuestion(callText(c), (shown, omitted) => {
    const call = `<code>${escapeHtml(shown)}</code>`;
    const cut =
      omitted === 0
        ? ''
        : `\n<i>${t(
            lang,
            `Only the start of the call is shown: ${omitted} more characters are not. Confirm runs all of it.`,
            `Seul le début de l’appel est affiché : ${omitted} caractères de plus ne le sont pas. Confirmer lance l’appel en entier.`,
          )}</i>`;
    return t(
      lang,
      `${PROXY_TAG} ❓ Run ${call}? It changes things.${cut}`,
      `${PROXY_TAG} ❓ Lancer ${call} ? Cela modifie des choses.${cut}`,
    );
  });
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escape sequences are what is removed.
const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]|\u001b[@-_]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is removed.
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/g;

/**
 * Command output as a person reads it: colours removed, a line redrawn with
 * carriage returns (a progress bar) shown as it ended, other control characters dropped.
 */
export function cleanOutput(text: string): string {
  return text
    .replace(ANSI, '')
    .replace(/\r\n/g, '\n')
    .split('\n')
    .map((line) => {
      const parts = line.split('\r').filter((p) => p.length > 0);
      return (parts.at(-1) ?? '').replace(CONTROL, '');
    })
    .join('\n');
}

/** The end of a command's output as it streams in, for the progress view. */
export class OutputTail {
  private text = '';

  push(chunk: string): void {
    this.text = tailChars(this.text + chunk, TAIL_CHARS);
  }

  lines(): string[] {
    const lines = cleanOutput(this.text).replace(/\n+$/, '').split('\n');
    return lines.slice(-PROGRESS_LINES).map((l) => shorten(l, LINE_CHARS));
  }
}

const pre = (text: string) => `<pre>${escapeHtml(text)}</pre>`;

export function progressHtml(title: string, lines: string[], elapsedMs: number, lang: Lang): string {
  const head = `${PROXY_TAG} ⏳ ${title} · ${formatDuration(elapsedMs)}`;
  const body = lines.join('\n').trim();
  return body ? `${head}\n${pre(body)}` : `${head}\n<i>${t(lang, 'running…', 'en cours…')}</i>`;
}

/** `stopCommand`: brainstem's /stop as typed in this set-up (`bstop` with the front on, where /stop is OpenClaw's). */
export function queuedHtml(title: string, lang: Lang, stopCommand: string): string {
  return t(
    lang,
    `${PROXY_TAG} ⏳ Queued: ${title} runs once the current answer is done (/${stopCommand} interrupts it).`,
    `${PROXY_TAG} ⏳ En attente : ${title} se lance dès que la réponse en cours est finie (/${stopCommand} pour l’interrompre).`,
  );
}

export interface ResultView {
  html: string;
  /** The whole output, when the message only shows part of it. */
  document?: { name: string; text: string };
}

export function resultView(
  req: CallRequest,
  r: ToolResult,
  stopped: StopReason | undefined,
  lang: Lang,
  now = Date.now(),
): ResultView {
  const title = callTitle(req);
  const took = formatDuration(r.durationMs);
  const lines = [headline(title, r, stopped, took, lang)];
  // A command's end says how it went (the summary, the error); a structured result reads from the top.
  // Data beside an output is not shown, unlike to a model (resultText): the output is what the
  // person asked for (the answer, the page, the file, the report), and the data either says it
  // again (usage, self_upgrade render theirs as the output, in the reader's language) or is for a
  // program to go on with (a sessionKey, token counts, byte sizes): English JSON, noise in a chat.
  const fromCommand = Boolean(r.output);
  const body = r.output
    ? cleanOutput(r.output).trimEnd()
    : r.data === undefined
      ? ''
      : typeof r.data === 'string'
        ? r.data
        : JSON.stringify(r.data, null, 2);
  let document: ResultView['document'];
  if (body.length > RESULT_CHARS) {
    const shown = fromCommand ? tailOf(body, RESULT_CHARS) : headOf(body, RESULT_CHARS);
    lines.push(pre(shown));
    lines.push(
      `<i>${t(
        lang,
        `${body.length - shown.length} more characters: the whole output is in the file below.`,
        `${body.length - shown.length} caractères de plus : la sortie complète est dans le fichier ci-dessous.`,
      )}</i>`,
    );
    document = { name: `${req.tool}-${fileStamp(now)}.txt`, text: `${body}\n` };
  } else if (body) {
    lines.push(pre(body));
  } else if (!r.error) {
    lines.push(`<i>${t(lang, 'no output', 'aucune sortie')}</i>`);
  }
  // The tool's own word on a cut (a brain's answer at its output limit) replaces brainstem's cap line, which would blame the wrong limit.
  if (r.note) {
    lines.push(`<i>${escapeHtml(r.note)}</i>`);
  } else if (r.truncated) {
    lines.push(
      `<i>${t(
        lang,
        'Output capped by brainstem (tools.maxOutputChars): its middle is left out.',
        'Sortie tronquée par brainstem (tools.maxOutputChars) : le milieu est omis.',
      )}</i>`,
    );
  }
  return document ? { html: lines.join('\n'), document } : { html: lines.join('\n') };
}

function headline(
  title: string,
  r: ToolResult,
  stopped: StopReason | undefined,
  took: string,
  lang: Lang,
): string {
  if (stopped === 'user') return `${PROXY_TAG} ⏹ ${title} · ${t(lang, 'stopped', 'arrêté')} · ${took}`;
  if (stopped === 'shutdown') {
    return t(
      lang,
      `${PROXY_TAG} ⏹ ${title} · stopped after ${took}: brainstem is restarting.`,
      `${PROXY_TAG} ⏹ ${title} · arrêté après ${took} : brainstem redémarre.`,
    );
  }
  if (r.error)
    return `${PROXY_TAG} ❌ ${title} · ${took}\n${escapeHtml(shorten(sayError(r.error, lang), ERROR_CHARS))}`;
  if (r.exitCode !== undefined) {
    return `${PROXY_TAG} ${r.ok ? '✅' : '❌'} ${title} · ${t(lang, 'exit', 'code de sortie')} ${r.exitCode} · ${took}`;
  }
  return `${PROXY_TAG} ✅ ${title} · ${took}`;
}

/** The last `max` characters, starting at a line when one starts close enough. */
function tailOf(text: string, max: number): string {
  const tail = tailChars(text, max);
  const nl = tail.indexOf('\n');
  return nl >= 0 && nl < max / 4 ? tail.slice(nl + 1) : tail;
}

function headOf(text: string, max: number): string {
  const head = headChars(text, max);
  const nl = head.lastIndexOf('\n');
  return nl > (max * 3) / 4 ? head.slice(0, nl) : head;
}

/** 2026-01-31T10:20:30Z → 20260131-102030, for file names. */
function fileStamp(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-');
}
