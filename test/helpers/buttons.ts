import type { FakeMessage } from '../fakes/telegram.js';

/** An inline button as the emulator keeps it. */
export type Button = { text: string; callback_data: string };

/** The inline buttons of a bot message, row after row; none when it has none (or is not there). */
export const buttonsOf = (m: FakeMessage | undefined): Button[] =>
  ((m?.replyMarkup as { inline_keyboard?: Button[][] } | undefined)?.inline_keyboard ?? []).flat();

/** The data of the first button whose label matches, as a press sends it; '' when none does. */
export const button = (m: FakeMessage, label: RegExp): string =>
  buttonsOf(m).find((b) => label.test(b.text))?.callback_data ?? '';
