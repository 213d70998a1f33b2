import type { ChatMessage, ContentPart } from '../brains/types.js';
import type { ModeConfig } from './config.js';
import { BrainstemError } from './errors.js';

/**
 * Images in a conversation. Every face hands them to the core as OpenAI
 * `image_url` parts holding a base64 `data:` URL (what OpenClaw and the openai
 * SDK send; the Telegram face builds the same from a photo), so the core checks
 * them once, a llama mode passes them upstream as they are, and a Claude mode
 * turns them into image blocks (brains/claude-code/stdin.ts). The base64 text
 * is never decoded whole: the size comes from its length and the type from its
 * first bytes, so an image is held once, as the client sent it.
 */

/** What the Messages API takes (and the Claude CLI passes on); OpenAI's vision input takes the same four. */
export const IMAGE_MEDIA_TYPES = ['image/jpeg', 'image/png', 'image/gif', 'image/webp'] as const;
export type ImageMediaType = (typeof IMAGE_MEDIA_TYPES)[number];

/**
 * The largest image accepted, decoded. The Bot API lets a bot download 20 MB
 * and OpenClaw sends bodies of 20 MB; the Claude CLI shrinks what is larger
 * than the API takes (it re-encodes big images as JPEG of at most 2000 px a
 * side before the call, seen with 2.1.197 and 2.1.332), so no lower cap is needed.
 */
export const MAX_IMAGE_BYTES = 20 * 1024 * 1024;

/** One image, checked: base64 text (no `data:` prefix) and the media type its bytes say. */
export interface ImageData {
  mediaType: ImageMediaType;
  base64: string;
  /** Decoded size. */
  bytes: number;
}

const DATA_URL = /^data:([^;,]*)((?:;[^;,]*)*),/i;
/** Any character base64 does not use (a negated class: ten times faster than an anchored match over megabytes). */
const NOT_BASE64 = /[^A-Za-z0-9+/=]/;

/** The media type the first bytes of a file say, if it is one of the four. */
export function sniffImageType(head: Uint8Array): ImageMediaType | undefined {
  const at = (i: number, ...bytes: number[]) => bytes.every((b, k) => head[i + k] === b);
  if (at(0, 0xff, 0xd8, 0xff)) return 'image/jpeg';
  if (at(0, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'image/png';
  if (at(0, 0x47, 0x49, 0x46, 0x38)) return 'image/gif';
  if (at(0, 0x52, 0x49, 0x46, 0x46) && at(8, 0x57, 0x45, 0x42, 0x50)) return 'image/webp';
  return undefined;
}

/** An image from bytes (a Telegram photo): undefined when they are none of the four types. */
export function imageFromBytes(bytes: Buffer): ImageData | undefined {
  const mediaType = sniffImageType(bytes.subarray(0, 16));
  return mediaType ? { mediaType, base64: bytes.toString('base64'), bytes: bytes.length } : undefined;
}

/** The OpenAI part for an image; the URL is a rope over the base64 text, not a copy of it. */
export function imagePart(image: ImageData): ContentPart {
  return { type: 'image_url', image_url: { url: `data:${image.mediaType};base64,${image.base64}` } };
}

/** An OpenAI Chat Completions image part. */
export function isImagePart(p: ContentPart): boolean {
  return p.type === 'image_url';
}

function urlOf(p: ContentPart): unknown {
  const field = (p as { image_url?: unknown }).image_url;
  if (typeof field === 'string') return field;
  return field && typeof field === 'object' ? (field as { url?: unknown }).url : undefined;
}

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

/**
 * Reads one `image_url` part. Refused with a 400 that names the part: a remote
 * URL (brainstem fetches nothing on a client's behalf: send the bytes as a
 * data URL), anything but base64, a type other than the four, a bigger image
 * than MAX_IMAGE_BYTES.
 */
export function readImagePart(p: ContentPart, param: string): ImageData {
  const bad = (why: string) => new BrainstemError('UNSUPPORTED_IMAGE', `${param}: ${why}`, param);
  const url = urlOf(p);
  if (typeof url !== 'string') throw bad('an image part needs image_url.url (a data: URL).');
  if (/^https?:/i.test(url)) {
    throw bad(
      'remote image URLs are not fetched; send the image itself as a data URL (data:image/png;base64,…).',
    );
  }
  const head = DATA_URL.exec(url.slice(0, 256));
  if (!head) throw bad('image_url.url must be a data: URL (data:image/png;base64,…).');
  if (!/;base64$/i.test(head[2] ?? '')) throw bad('the data URL must be base64 (data:image/png;base64,…).');
  const base64 = url.slice(head[0].length);
  const length = base64.length - (base64.endsWith('==') ? 2 : base64.endsWith('=') ? 1 : 0);
  const bytes = Math.floor((length * 3) / 4);
  if (bytes > MAX_IMAGE_BYTES) {
    throw bad(`the image is ${mb(bytes)}; the largest taken is ${mb(MAX_IMAGE_BYTES)}.`);
  }
  // Checked whole: the text goes into the CLI's JSON line as it is, so a quote must never get through.
  const pad = base64.indexOf('=');
  if (base64.length % 4 === 1 || NOT_BASE64.test(base64) || (pad !== -1 && pad < length)) {
    throw bad('the data URL is not valid base64.');
  }
  const mediaType = sniffImageType(Buffer.from(base64.slice(0, 24), 'base64'));
  if (!mediaType) {
    const said = head[1] ? ` (it says ${head[1]})` : '';
    throw bad(`the image is not JPEG, PNG, GIF or WebP${said}; convert it to one of them.`);
  }
  return { mediaType, base64, bytes };
}

/** The images of a message, checked, in order; `param` names the message (e.g. `messages.3`). */
export function imagesOf(m: ChatMessage, param: string): ImageData[] {
  if (!Array.isArray(m.content)) return [];
  return m.content.flatMap((p, i) => (isImagePart(p) ? [readImagePart(p, `${param}.content.${i}`)] : []));
}

/** Whether a message holds an image part (unchecked). */
export function hasImages(m: ChatMessage): boolean {
  return Array.isArray(m.content) && m.content.some(isImagePart);
}

/** The images of the user messages from index `from` on (the new turn: after the last assistant message). */
export function newTurnImages(messages: ChatMessage[], from: number): ImageData[] {
  return messages
    .slice(from)
    .flatMap((m, i) => (m.role === 'user' ? imagesOf(m, `messages.${from + i}`) : []));
}

/**
 * Checks every image of a request (400 on the first bad one) and returns how
 * many the new turn (the messages from index `from` on) holds. Images are only
 * taken in user messages.
 */
export function checkImages(messages: ChatMessage[], from: number): { newTurn: number } {
  let newTurn = 0;
  messages.forEach((m, i) => {
    if (!hasImages(m)) return;
    if (m.role !== 'user') {
      throw new BrainstemError(
        'UNSUPPORTED_IMAGE',
        `messages.${i}: images are taken in user messages only, not in ${m.role} messages.`,
        `messages.${i}.content`,
      );
    }
    const n = imagesOf(m, `messages.${i}`).length;
    if (i >= from) newTurn += n;
  });
  return { newTurn };
}

/** Whether a mode's model takes images: `modes.<id>.vision`, else Claude modes do and llama modes do not. */
export function takesImages(mode: ModeConfig): boolean {
  return mode.vision ?? mode.kind === 'claude';
}

/**
 * The refusal for images sent to a mode whose model takes none: what to do instead.
 * `param`: where the image is (`messages.1.content.0`), as OpenAI names a refused part.
 */
export function noVisionError(mode: ModeConfig, param: string): BrainstemError {
  return new BrainstemError(
    'IMAGES_NOT_TAKEN',
    `The model of mode "${mode.id}" takes no images. Describe the image in words, switch to a mode that sees images (a Claude mode), or, if this model does see them (a vision model with its projector loaded), set modes.${mode.id}.vision to true.`,
    param,
    `Le modèle du mode « ${mode.id} » ne prend pas d’images. Décrivez l’image avec des mots, passez à un mode qui voit les images (un mode Claude) ou, si ce modèle les voit (un modèle de vision avec son projecteur chargé), mettez modes.${mode.id}.vision à true.`,
  );
}

/**
 * The line that stands for an image where it is not sent (a replayed earlier
 * turn, a text-only model), so the brain knows one was there; `attached` where
 * it is sent after the text and the line only says whose it is (prompt.ts).
 */
export function imageMention(
  p: ContentPart,
  where: 'not shown here' | 'attached' = 'not shown here',
): string {
  const url = urlOf(p);
  const type = typeof url === 'string' ? /^data:(image\/[\w.+-]+)/i.exec(url)?.[1] : undefined;
  return `[image${type ? ` (${type})` : ''} ${where}]`;
}

/** A short mark of each image of a message (type, size, last bytes), for the conversation digest. */
export function imageMarks(m: ChatMessage): string[] {
  if (!Array.isArray(m.content)) return [];
  return m.content.flatMap((p) => {
    if (!isImagePart(p)) return [];
    const url = urlOf(p);
    return typeof url === 'string' ? [`${url.length}:${url.slice(5, 30)}:${url.slice(-48)}`] : ['?'];
  });
}
