import type { Api } from 'grammy';
import type { Message } from 'grammy/types';
import { IMAGE_MEDIA_TYPES, type ImageData, takesImages } from '../../../src/images.js';
import type { BotDeps } from '../deps.js';
import { downloadTelegramImage } from './media.js';

/**
 * The photo a message replies to, for the brain to see with the reply: "what does this say?" under a
 * screenshot a group member posted reaches the brain with the screenshot, which it may never have
 * seen (reply.ts only names it). Its largest size, or an image sent as a document, of a message in
 * the same chat. Only for a mode that takes images, as the core decides once a switch is over: a
 * reply to a photo in a text-only mode stays a question in words, the brain told a photo is there.
 * `waiting` shows that a switch is awaited, as the answer would. Undefined when there is none or it
 * could not be fetched (logged: the reply goes on, naming it).
 */
export async function repliedImage(
  deps: BotDeps,
  message: Message,
  api: Api,
  { signal, waiting }: { signal: AbortSignal; waiting: () => Promise<void> },
): Promise<ImageData | undefined> {
  const replied = message.reply_to_message;
  const doc = replied?.document;
  const file =
    replied?.photo?.at(-1) ??
    (doc && (IMAGE_MEDIA_TYPES as readonly string[]).includes(doc.mime_type ?? '') ? doc : undefined);
  if (!file) return undefined;
  const { switcher } = deps.core;
  if (switcher.isSwitching()) await waiting();
  await switcher.whenIdle(signal);
  if (signal.aborted || !takesImages(switcher.active())) return undefined;
  const chatId = message.chat.id;
  try {
    const { image, bytes } = await downloadTelegramImage({ api, ...deps }, file, signal);
    if (!image) deps.logger.warn({ chatId, bytes }, 'a replied-to image is no image brainstem reads');
    return image;
  } catch (err) {
    if (!signal.aborted)
      deps.logger.warn({ err: (err as Error).message, chatId }, 'could not download a replied-to image');
    return undefined;
  }
}
