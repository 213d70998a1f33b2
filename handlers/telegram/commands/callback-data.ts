/**
 * Every button brainstem makes carries callback data starting with this, so a
 * press is told apart from a press on a button OpenClaw made (with the Bot API
 * front on, those go to OpenClaw). Telegram allows 64 bytes of data.
 */
export const OWN_DATA_PREFIX = 'bs:';

/** A regular expression for brainstem's button data `bs:<rest>`; `rest` is a regex source. */
export const ownData = (rest: string): RegExp => new RegExp(`^${OWN_DATA_PREFIX}${rest}`);
