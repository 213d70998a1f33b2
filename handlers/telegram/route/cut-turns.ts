import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { Db } from '../../../src/db/index.js';
import type { KeptWrites } from '../../../src/db/kept-writes.js';
import { Html, html } from '../../../src/html.js';
import { type Lang, t } from '../../../src/i18n.js';
import type { Logger } from '../../../src/logger.js';
import type { Notifier } from '../../../src/notices.js';
import { shorten } from '../../../src/text.js';

/** What a cut turn's notice quotes of each message, so the user knows which to send again. */
const QUOTE_CHARS = 80;

/** A brain's answer to a message, or a tool run (/run, a shortcut word), whose result did not come. */
export type TurnKind = 'answer' | 'tool';

export interface TurnUnderWay {
  chatId: number;
  topicId?: number | undefined;
  kind: TurnKind;
  lang: Lang;
  /** An answer: the message's text or caption ('' for a voice note, a photo without caption…). A tool run: its call as text. */
  said: string;
}

interface Row {
  key: string;
  chatId: number;
  topicId: number | null;
  kind: string;
  lang: string;
  said: string;
  /** 1: its answer (result) was on its way to Telegram, which may have shown it (see `delivering`). */
  delivering: number | null;
}

/**
 * The chats' turns that have not ended yet, running or queued, in SQLite: the direct route's
 * answers, and tool runs (with the front on too). A stop (SIGTERM) ends each with a notice of its
 * own (stream/answer.ts, commands/tool-run.ts); a crash, an OOM kill or a power loss ends none, and
 * Telegram already had the message confirmed (the runner fetches on while it is handled, so it is
 * not fetched again): the user was left with half an answer, a tool's "running" progress or a
 * "queued" notice promising a result, and nothing more. What a crash leaves here is told to its chat at the next
 * start, once: the notice is recorded (its key made from the turns, so a crash between the notice
 * and the rows' removal does not tell it twice) before the rows go.
 *
 * Behind another process's lock the writes wait in memory (KeptWrites) and the turn is answered
 * all the same; a crash then leaves nothing to tell, as before.
 */
export class TurnsUnderWay {
  /**
   * The arrival record (see `arriving`) of the message whose handlers run in this async context, until
   * a turn takes its place: `key` undefined once one did.
   */
  private readonly arrival = new AsyncLocalStorage<{ key: string | undefined }>();

  constructor(
    private readonly db: Db,
    private readonly kept: KeptWrites,
    private readonly logger: Logger,
  ) {}

  /**
   * Records a message as under way from the moment it is fetched, and runs its handlers (`handle`)
   * with it; the record goes when they are done. The runner fetches on (confirming the message at
   * Telegram) as soon as it hands the message over, while its chat's lane may still hold it behind
   * an earlier message whose handler waits (a "not supported" reply waiting out a 429, a /status
   * waiting for a readiness check): a crash then lost the message without a word, as no turn had
   * recorded it yet. The turn (or tool run) its handlers begin takes this record's place.
   */
  async arriving(message: TurnUnderWay, handle: () => Promise<void>): Promise<void> {
    const held = { key: this.insert(message) as string | undefined };
    try {
      await this.arrival.run(held, handle);
    } finally {
      if (held.key !== undefined) this.end(held.key);
      // A timer its handlers set keeps this context: a turn it begins later has no record to replace.
      held.key = undefined;
    }
  }

  /**
   * Records a turn as under way; returns its key, for `end`. Never throws. Begun by a message's
   * handlers, it takes the place of the message's arrival record, in one write: the message is told
   * once if a crash cuts it.
   */
  begin(turn: TurnUnderWay): string {
    const held = this.arrival.getStore();
    const arrived = held?.key;
    if (held) held.key = undefined;
    return this.insert(turn, arrived);
  }

  /** Writes a turn's record (and removes `replaces`, in the same transaction); its key. Never throws. */
  private insert(turn: TurnUnderWay, replaces?: string): string {
    const key = randomUUID();
    this.kept.run(`the turn under way in chat ${turn.chatId}`, () =>
      this.db.transaction(() => {
        this.db
          .prepare(
            'INSERT INTO telegram_turns (key, chat_id, topic_id, kind, lang, said, ts) VALUES (?, ?, ?, ?, ?, ?, ?)',
          )
          .run(key, turn.chatId, turn.topicId ?? null, turn.kind, turn.lang, turn.said, Date.now());
        if (replaces !== undefined) this.db.prepare('DELETE FROM telegram_turns WHERE key = ?').run(replaces);
      })(),
    );
    return key;
  }

  /**
   * The turn's final text (a tool run's result) goes to Telegram now. Telegram may show it and a crash
   * come before the turn ends here: told at the next start, it must not say the answer will not come
   * when the user has it. Written before the send, so no crash falls between the two. Never throws.
   */
  delivering(key: string): void {
    this.kept.run(`the delivery of a turn's answer`, () =>
      this.db.prepare('UPDATE telegram_turns SET delivering = 1 WHERE key = ?').run(key),
    );
  }

  /** The turn ended (answered, stopped, failed, or told it was cut by a stop). Never throws. */
  end(key: string): void {
    this.kept.run(`the end of a turn`, () =>
      this.db.prepare('DELETE FROM telegram_turns WHERE key = ?').run(key),
    );
  }

  /**
   * At start, before polling: tells each chat (or forum topic) the turns the last run left unended,
   * in one notice, and forgets them. A database another process holds leaves them for the next start.
   */
  tellCut(notifier: Notifier): void {
    let rows: Row[];
    try {
      rows = this.db
        .prepare<[], Row>(
          'SELECT key, chat_id AS chatId, topic_id AS topicId, kind, lang, said, delivering FROM telegram_turns ORDER BY ts, rowid',
        )
        .all();
    } catch (err) {
      this.logger.warn({ err }, 'could not read the turns a restart cut: they are told at the next start');
      return;
    }
    const byChat = new Map<string, Row[]>();
    for (const row of rows) {
      const chat = `${row.chatId}:${row.topicId ?? ''}`;
      byChat.set(chat, [...(byChat.get(chat) ?? []), row]);
    }
    for (const cut of byChat.values()) {
      const [first] = cut;
      if (!first) continue;
      const lang: Lang = first.lang === 'fr' ? 'fr' : 'en';
      notifier.notify({
        kind: 'shutdown',
        text: cutText(cut, lang),
        dedupeKey: `turns-cut:${cut.map((r) => r.key).join(',')}`,
        chat: { id: first.chatId, ...(first.topicId === null ? {} : { topicId: first.topicId }) },
      });
      this.logger.info({ chatId: first.chatId, turns: cut.length }, 'told a chat the answers a restart cut');
      for (const r of cut) this.end(r.key);
    }
  }
}

/**
 * "brainstem restarted before answering “…”: send it again", each message quoted (escaped), and
 * for a tool run that its result will not come and that it may have stopped part way. A turn whose
 * answer (result) was on its way to Telegram may have shown it: said so, not that it will not come.
 */
function cutText(cut: Row[], lang: Lang): Html {
  const answers = cut.filter((r) => r.kind !== 'tool');
  const said = answers.filter((r) => r.delivering === null).map((r) => r.said);
  const sent = answers.filter((r) => r.delivering !== null).map((r) => r.said);
  const runsOf = (rows: Row[]) => rows.map((r) => html`<code>${shorten(r.said, QUOTE_CHARS)}</code>`);
  const runs = runsOf(cut.filter((r) => r.kind === 'tool' && r.delivering === null));
  const shown = runsOf(cut.filter((r) => r.kind === 'tool' && r.delivering !== null));
  const parts: Html[] = [];
  if (said.length > 0) parts.push(answersText(said, lang));
  if (sent.length > 0) parts.push(sentText(sent, lang));
  if (runs.length > 0)
    parts.push(
      t(
        lang,
        html`brainstem restarted (a crash?) while it ran ${Html.join(runs, ', ')}: the result will not come, and the run may have stopped part way. Check before running it again.`,
        html`brainstem a redémarré (un plantage ?) pendant qu’il exécutait ${Html.join(runs, ', ')} : le résultat ne viendra pas, et l’exécution s’est peut-être arrêtée en cours. Vérifiez avant de la relancer.`,
      ),
    );
  if (shown.length > 0)
    parts.push(
      t(
        lang,
        html`brainstem restarted (a crash?) as it sent the result of ${Html.join(shown, ', ')}: the run ended, but its result may not have arrived in full. Check before running it again.`,
        html`brainstem a redémarré (un plantage ?) pendant qu’il envoyait le résultat de ${Html.join(shown, ', ')} : l’exécution s’est terminée, mais son résultat n’est peut-être pas arrivé en entier. Vérifiez avant de la relancer.`,
      ),
    );
  return Html.join(parts, '\n');
}

/** Quotes each message (escaped), as what a cut turn's notice names. */
function quotesOf(said: string[], lang: Lang): Html[] {
  return said.map((s) => {
    const text = s.trim().replace(/\s+/g, ' ');
    return text
      ? html`“${shorten(text, QUOTE_CHARS)}”`
      : t(
          lang,
          html`a message without text (voice note, photo or file)`,
          html`un message sans texte (note vocale, photo ou fichier)`,
        );
  });
}

/** Answers whose final text was on its way: Telegram may have shown them, whole or in part. */
function sentText(said: string[], lang: Lang): Html {
  const list = Html.join(quotesOf(said, lang), ', ');
  return said.length === 1
    ? t(
        lang,
        html`brainstem restarted (a crash?) as it sent its answer to ${list}: if it did not arrive in full, send it again.`,
        html`brainstem a redémarré (un plantage ?) pendant qu’il envoyait sa réponse à ${list} : si elle n’est pas arrivée en entier, renvoyez-le.`,
      )
    : t(
        lang,
        html`brainstem restarted (a crash?) as it sent its answers to ${said.length} messages: ${list}. Send again those whose answer did not arrive in full.`,
        html`brainstem a redémarré (un plantage ?) pendant qu’il envoyait ses réponses à ${said.length} messages : ${list}. Renvoyez ceux dont la réponse n’est pas arrivée en entier.`,
      );
}

function answersText(said: string[], lang: Lang): Html {
  const list = Html.join(quotesOf(said, lang), ', ');
  return said.length === 1
    ? t(
        lang,
        html`brainstem restarted (a crash?) before it finished answering ${list}: that answer will not come. Send it again.`,
        html`brainstem a redémarré (un plantage ?) avant de finir de répondre à ${list} : cette réponse ne viendra pas. Renvoyez-le.`,
      )
    : t(
        lang,
        html`brainstem restarted (a crash?) before it finished answering ${said.length} messages: ${list}. Those answers will not come. Send them again.`,
        html`brainstem a redémarré (un plantage ?) avant de finir de répondre à ${said.length} messages : ${list}. Ces réponses ne viendront pas. Renvoyez-les.`,
      );
}
