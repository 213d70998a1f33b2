import { GrammyError, HttpError } from 'grammy';
import { sayThrown } from '../../../src/errors.js';
import { type Lang, t } from '../../../src/i18n.js';
import { shorten } from '../../../src/text.js';

/**
 * Why something failed, in words the user can act on. grammY's own text
 * ("Call to 'sendMessage' failed! (400: Bad Request: message is too long)")
 * names a method the user never called: it goes to the log, and the chat
 * gets what Telegram refused, or that it could not be reached. Plain text, not escaped.
 */
export function failureReason(err: unknown, lang: Lang): string {
  const telegram = telegramReason(err, lang);
  if (telegram !== undefined) return telegram;
  // brainstem's own errors say what happened ("the state database is locked by another process"),
  // in French too when they carry it.
  return sayThrown(err, lang);
}

/** A refusal from Telegram, or a failure to reach it, in words; undefined for any other error. */
export function telegramReason(err: unknown, lang: Lang): string | undefined {
  if (err instanceof HttpError) {
    return t(
      lang,
      'brainstem could not reach Telegram; try again in a moment',
      'brainstem n’a pas pu joindre Telegram ; réessayez dans un instant',
    );
  }
  if (!(err instanceof GrammyError)) return undefined;
  const said = err.description;
  if (/message is too long|text is too long/i.test(said)) {
    return t(
      lang,
      'Telegram refused the message: it is too long',
      'Telegram a refusé le message : il est trop long',
    );
  }
  if (/caption is too long/i.test(said)) {
    return t(
      lang,
      'Telegram refused the caption: it is too long',
      'Telegram a refusé la légende : elle est trop longue',
    );
  }
  if (/can't parse entities/i.test(said)) {
    return t(
      lang,
      'Telegram could not read the formatting of the message',
      'Telegram n’a pas pu lire la mise en forme du message',
    );
  }
  if (/message text is empty/i.test(said)) {
    return t(lang, 'Telegram refused the message: it is empty', 'Telegram a refusé le message : il est vide');
  }
  if (/message to edit not found|message can't be edited|MESSAGE_ID_INVALID/i.test(said)) {
    return t(
      lang,
      'the message to update is gone (deleted, or too old to edit)',
      'le message à mettre à jour n’existe plus (supprimé, ou trop ancien pour être modifié)',
    );
  }
  if (/not enough rights/i.test(said)) {
    return t(
      lang,
      'the bot is not allowed to write here (not enough rights in this chat)',
      'le bot n’a pas le droit d’écrire ici (pas assez de droits dans cette discussion)',
    );
  }
  if (err.error_code === 403) {
    return t(
      lang,
      'Telegram does not let the bot write to this chat (blocked, or removed from it)',
      'Telegram ne laisse pas le bot écrire dans cette discussion (bloqué, ou retiré)',
    );
  }
  if (err.error_code === 429) {
    const wait = err.parameters.retry_after;
    return wait === undefined
      ? t(
          lang,
          'Telegram asks the bot to slow down; try again in a moment',
          'Telegram demande au bot de ralentir ; réessayez dans un instant',
        )
      : t(
          lang,
          `Telegram asks the bot to slow down; try again in ${wait} s`,
          `Telegram demande au bot de ralentir ; réessayez dans ${wait} s`,
        );
  }
  if (err.error_code >= 500) {
    return t(
      lang,
      'Telegram had an internal error; try again in a moment',
      'Telegram a eu une erreur interne ; réessayez dans un instant',
    );
  }
  // Telegram's own words, without grammY's wrapper: the best there is for a refusal not listed above.
  const why = shorten(said.replace(/^Bad Request:\s*/i, ''), 200);
  return t(lang, `Telegram refused it (${why})`, `Telegram a refusé (${why})`);
}
