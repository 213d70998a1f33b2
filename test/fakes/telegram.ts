/**
 * A fake Telegram Bot API server for grammY (point `TELEGRAM_API_ROOT`, or
 * grammY's `client.apiRoot`, at `tg.apiRoot`). It keeps the state a real chat
 * would show, checks what Telegram checks (HTML entities, 4096 characters,
 * "message is not modified"), and lets a test inject Telegram's failures.
 *
 *   const tg = await startFakeTelegram();           // tg.token, tg.apiRoot
 *   const alice = tg.user(111, { languageCode: 'fr' }); // private chat 111
 *   const team = tg.user(222, { chatId: -100500 });     // the same user API, in a group
 *   alice.says('hello')            // a text message (a leading /command gets its bot_command entity)
 *   alice.presses(messageId, 'mode:local')   // a callback query on a bot message
 *   alice.sendsPhoto(bytes, 'caption'), alice.sendsDocument('a.pdf', bytes, 'caption')   (a caption's leading /command: in caption_entities)
 *   alice.sendsVoice(bytes?, caption?), alice.sendsAudio('a.mp3', bytes), alice.sendsVideoNote(bytes), alice.sendsSticker()
 *   alice.says('yes', { replyTo: messageId, quote: 'part of it' })   a reply (reply_to_message: that message as
 *                                           the chat holds it; `quote`: Telegram's quote of part of it)
 *   const topic = tg.user(222, { chatId: -100500, topicId: 7 })   the same user in topic 7 of a forum group:
 *                                           its messages carry message_thread_id and is_topic_message
 *   alice.sendsAlbum([png1, png2], 'caption')   // one message per photo, one media_group_id
 *   alice.sendsDocuments([{ name: 'a.txt', bytes }], 'caption')   // the same, one message per file
 *   alice.sends({ video: {...}, media_group_id: 'g', caption: 'x' })   any other message, its fields as given
 *   alice.edits(messageId, 'new text')       an edited_message update for one of the user's messages: the
 *                                           message as sent (date, topic, reply, media), the new text as
 *                                           its text, or its caption when it has media (left out for a
 *                                           poller whose allowed_updates omits edited_message, as at Telegram)
 *   alice.replacesPhoto(messageId, bytes, 'caption'?)   an edited_message whose photo the user swapped
 *                                           for another (Telegram's "replace" of a sent photo or file)
 *   alice.replacesMedia(messageId, { video: {...} }, 'caption'?)   the same with media of any kind, its
 *                                           fields as given: the message's photo, video or file is gone
 *                                           (tg.storesFile(bytes, 'mp3') gives a file the bot can download)
 *   alice.reacts(messageId, '👍')            a message_reaction update (sent only to a poller that asks
 *                                           for it in allowed_updates, as Telegram does)
 *   → each returns the update's message id (callback: the callback query id; edits and reactions: the
 *     update id)
 *   alice.deletes(messageId)       deletes a message in the chat, a bot's too (Telegram tells the bot nothing)
 *   tg.closesTopic(chatId, topicId), tg.deletesTopic(chatId, topicId)   an admin closes or deletes a forum
 *                                          topic: a message sent into it then gets 400 TOPIC_CLOSED, or
 *                                          400 message thread not found (the deleted topic's messages go)
 *   tg.reopensTopic(chatId, topicId)     an admin reopens a closed topic: messages go into it again, and
 *                                          Telegram's forum_topic_reopened service message comes as an
 *                                          update from inside the topic; returns its message id
 *   tg.migrates(groupId, supergroupId)   a basic group (`tg.user(id, { chatId, basicGroup: true })`) is
 *                                          upgraded to a supergroup: the service messages of both chats
 *                                          (migrate_to_chat_id, migrate_from_chat_id) come as updates, and
 *                                          every later call naming the old chat (a menu scope's chat_id
 *                                          too) gets 400 "group chat was
 *                                          upgraded to a supergroup chat" with parameters.migrate_to_chat_id
 *   tg.pushes({ channel_post: {...} })   any other update, its one field as given (a channel post, a
 *                                           member update); returns its update id. Left out for a poller
 *                                           that does not take its type, as Telegram does.
 *
 * Inspecting:
 *   tg.calls                    every API call, oldest first: { method, params, at, ok, errorCode?, description? }
 *   tg.callsOf('editMessageText', chatId?)
 *   tg.messages(chatId)         every message of the chat (user's and bot's), with its current
 *                               visible `text`, the `raw` text as sent, `entities`, `replyMarkup`,
 *                               `edits` and `history` (every visible text it had, oldest first)
 *   tg.botMessages(chatId), tg.lastBotMessage(chatId)
 *   tg.drafts(chatId)           sendMessageDraft calls accepted, oldest first
 *   a bot message's `topicId` is the message_thread_id it was sent with (sendMessage, sendPhoto, sendDocument);
 *                               the Message returned then carries message_thread_id, is_topic_message (in a
 *                               forum) and reply_to_message (the message it replies to, else the topic's
 *                               opening service message), as Telegram's does
 *   tg.reactions                setMessageReaction calls accepted, oldest first: { chatId, messageId, emojis,
 *                               isBig }; a message's `reaction` is the bot's current one ([] once removed)
 *   tg.commands                 setMyCommands of the default scope per language code ('' = default)
 *   tg.menus                    every command list per scope and language: key `<scope type>[:<chat id>]|<lang>`
 *   tg.updateLog                every update created, oldest first
 *   tg.releasedAt               when (performance.now()) each update id left in a getUpdates answer
 *   tg.polling                  getUpdates seen: { calls, maxConcurrent, conflicts, allowedUpdates, confirmed } (a second
 *                               poll that waits itself ends the waiting one with 409 Conflict, as Telegram does)
 *   tg.callbackAnswers          answerCallbackQuery calls
 *   await tg.waitFor(() => value | undefined | false, { timeoutMs })  re-checked after every call
 *
 * Injecting failures:
 *   tg.rateLimit('editMessageText', 2, 1)   the next 2 calls of that method get 429, retry_after 1 s; after
 *                                          a 429, a message sent or changed in that chat before its retry_after is
 *                                          over gets 429 too, as at Telegram (startFakeTelegram({ floodControl: false })
 *                                          for a client on a clock of its own)
 *   tg.failNext('sendMessage', 1, { code: 403, description: 'Forbidden: bot was blocked by the user' }, chatId?)
 *                                          (`parameters` too, as Telegram adds them: { migrate_to_chat_id })
 *                                          (a 5xx too: grammY's auto-retry then tries again)
 *   tg.dropNext('editMessageText', 1, chatId?)  the connection is cut without an answer (a network failure)
 *   const release = tg.holdNext('sendChatAction', chatId?)   the next call of that method (to that chat) reaches
 *                                          Telegram only at release() (at once if released before it came): a call
 *                                          slow on its way, which the calls sent after it could overtake
 *   const release = tg.holdAnswerOf('editMessageText', chatId?)   the next call of that method (to that chat)
 *                                          is handled at once (its message shown, listed in tg.calls) but
 *                                          answered only at release(): Telegram has it, the bot has not
 *                                          heard so yet (a crash then comes between the two)
 *   tg.restartUpdateIds(100)    the next update gets id 100, as Telegram picks a new id after a week
 *                               without updates (a poller's offset past it is then "in the future":
 *                               it confirms nothing and gets the updates from the first, as at Telegram)
 *   const release = tg.holdDownloads()   file downloads (GET /file/…) wait until release(): a turn's
 *                                          download stays in flight; tg.downloads lists each one asked
 *                                          (its file path), oldest first, when it arrives; a HEAD of a
 *                                          file is answered with its headers only (Content-Length, no
 *                                          body, as Telegram's file server does) and listed in tg.fileHeads;
 *                                          as that server (nginx), every file answer has Accept-Ranges,
 *                                          ETag and Last-Modified, and a Range of one span (If-Range, if
 *                                          given, the file's ETag or Last-Modified) gets 206 with
 *                                          Content-Range, one past the end 416; an If-None-Match naming
 *                                          its ETag (or an If-Modified-Since not before its Last-Modified,
 *                                          without If-None-Match) gets 304 with no body
 *   Uploads: a request body over 50 MB (tg.setUploadLimit(bytes) for another limit) gets Telegram's
 *                                          413 Request Entity Too Large, answered as soon as the body
 *                                          passes it (the rest read and dropped); tg.tooLarge lists the
 *                                          methods refused so; tg.receiving lists each request whose body
 *                                          began to arrive, tg.cutShort each one whose client went away
 *                                          before its end; tg.bodyBytes('sendDocument') counts the body
 *                                          bytes arrived in that method's calls; tg.connections() counts
 *                                          the open ones
 *   tg.rejectHtml((raw) => raw.includes('x'))  400 "can't parse entities" for parse_mode HTML texts that match;
 *                                              tg.rejectHtml(undefined) clears it
 *   Always on: invalid HTML → 400 can't parse entities; visible text over 4096 → 400 message is too long;
 *   half an emoji (a lone surrogate) → 400 text must be encoded in UTF-8; the whitespace at a text's ends
 *   dropped, as Telegram keeps it (its entities moved with it);
 *   an edit that changes nothing → 400 message is not modified; an edit of a message the bot did not
 *   send → 400 message can't be edited; drafts in non-private chats → 400;
 *   a message sent into a forum with a message_thread_id that is no topic of it (the General topic's 1
 *   included: it is addressed without one) → 400 message thread not found;
 *   setMessageReaction: an emoji outside Telegram's reaction list, a custom or paid one → 400
 *   REACTION_INVALID, more than one → 400 REACTIONS_TOO_MANY, no such message → 400 MESSAGE_ID_INVALID.
 *
 * Also served: getMe, getUpdates (long polling, offset confirms, allowed_updates remembered),
 * deleteWebhook, getWebhookInfo, set/delete/getMyCommands (per scope and language), sendMessage,
 * editMessageText, editMessageReplyMarkup, deleteMessage, sendChatAction, answerCallbackQuery,
 * setMyCommands, getFile + GET /file/bot<token>/<path>, sendDocument, sendPhoto, sendVoice, sendAudio
 * and sendVideo (multipart: the message keeps the file's name, size and bytes in `document` /
 * `photo` / `voice` / `audio` / `video`; by file id or URL: that as its name, no bytes),
 * sendMediaGroup (InputMedia with `attach://<part>`: one message per file, one `mediaGroupId`), sendMessageDraft,
 * setMessageReaction.
 */
import { EventEmitter, once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { gunzipSync, inflateSync } from 'node:zlib';

export interface FakeEntity {
  type: string;
  offset: number;
  length: number;
  url?: string;
  language?: string;
}

export interface FakeMessage {
  chatId: number;
  messageId: number;
  from: 'bot' | 'user';
  /** Visible text (after HTML parsing), or the caption of a document. */
  text: string;
  /** The text exactly as sent. */
  raw: string;
  parseMode?: string;
  entities: FakeEntity[];
  replyMarkup?: unknown;
  replyTo?: number;
  /** The forum topic it was sent to (`message_thread_id`). */
  topicId?: number;
  document?: FakeFile;
  photo?: FakeFile;
  voice?: FakeFile;
  audio?: FakeFile;
  video?: FakeFile;
  /** The album it was sent in (sendMediaGroup). */
  mediaGroupId?: string;
  /** The emojis of the bot's reaction (setMessageReaction); [] once it removed it. */
  reaction?: string[];
  edits: number;
  history: string[];
  deleted: boolean;
}

/** A file the bot uploaded; `bytes` is empty when it was sent by file id or URL. */
export interface FakeFile {
  fileName: string;
  size: number;
  bytes: Uint8Array;
}

/** A setMessageReaction call Telegram accepted; `emojis` empty = the reaction was removed. */
export interface FakeReaction {
  chatId: number;
  messageId: number;
  emojis: string[];
  isBig: boolean;
}

export interface FakeCall {
  method: string;
  params: Record<string, unknown>;
  at: number;
  ok: boolean;
  errorCode?: number;
  description?: string;
}

export interface FakeUserOptions {
  /** Default: the user id (a private chat). Negative ids are groups. */
  chatId?: number;
  languageCode?: string;
  firstName?: string;
  /** A topic of a forum group (chatId < 0): the user's messages are topic messages of this thread. */
  topicId?: number;
  /** The group (chatId < 0) is a basic group (type `group`), not a supergroup: one `tg.migrates` can upgrade. */
  basicGroup?: boolean;
}

export interface FakeUser {
  id: number;
  chatId: number;
  says(text: string, reply?: { replyTo: number; quote?: string }): number;
  presses(messageId: number, data: string): string;
  sendsPhoto(bytes: Uint8Array, caption?: string): number;
  /** An album: one message per photo, sharing a media_group_id, the caption on the first; their ids. */
  sendsAlbum(photos: Uint8Array[], caption?: string): number[];
  /** A message of any other kind: these fields (besides the ids, chat, sender and date) as Telegram sends them. */
  sends(fields: Record<string, unknown>): number;
  sendsDocument(fileName: string, bytes: Uint8Array, caption?: string, mimeType?: string): number;
  /** Files sent together: one message per file, one media_group_id, the caption on the first. */
  sendsDocuments(files: { name: string; bytes: Uint8Array; mimeType?: string }[], caption?: string): number[];
  sendsVoice(bytes?: Uint8Array, caption?: string): number;
  sendsAudio(fileName: string, bytes: Uint8Array, mimeType?: string): number;
  sendsVideoNote(bytes: Uint8Array): number;
  sendsSticker(): number;
  edits(messageId: number, text: string): number;
  replacesPhoto(messageId: number, bytes: Uint8Array, caption?: string): number;
  replacesMedia(messageId: number, media: Record<string, unknown>, caption?: string): number;
  reacts(messageId: number, emoji: string): number;
  /** Deletes a message of the chat, as a user may delete a bot's message in a private chat. */
  deletes(messageId: number): void;
}

export interface FakePolling {
  /** getUpdates calls answered. */
  calls: number;
  /** The most getUpdates calls waiting at the same time (1 for a single poller). */
  maxConcurrent: number;
  /** Polls ended by a newer one (409 Conflict). */
  conflicts: number;
  /** Whether a poll waits now: the one a newer poll that waits too ends. */
  waiting: boolean;
  /** What the poller last asked for; undefined = never said (Telegram's default set). */
  allowedUpdates: string[] | undefined;
  /** The highest update id a poll's offset confirmed (0: none): Telegram will not send it again. */
  confirmed: number;
}

export interface FakeTelegram {
  token: string;
  apiRoot: string;
  botId: number;
  botUsername: string;
  calls: FakeCall[];
  commands: Map<string, { command: string; description: string }[]>;
  menus: Map<string, { command: string; description: string }[]>;
  polling: FakePolling;
  /** Every update created, oldest first, as sent to the poller. */
  updateLog: Record<string, unknown>[];
  /** When (performance.now()) each update left in a getUpdates answer, by update id. */
  releasedAt: Map<number, number>;
  callbackAnswers: { callbackQueryId: string; text?: string }[];
  /** setMessageReaction calls accepted, oldest first. */
  reactions: FakeReaction[];
  user(id: number, opts?: FakeUserOptions): FakeUser;
  messages(chatId: number): FakeMessage[];
  botMessages(chatId: number): FakeMessage[];
  lastBotMessage(chatId: number): FakeMessage | undefined;
  drafts(chatId: number): { draftId: number; text: string }[];
  callsOf(method: string, chatId?: number): FakeCall[];
  waitFor<T>(check: () => T | undefined | false | null, opts?: { timeoutMs?: number }): Promise<T>;
  rateLimit(method: string, times: number, retryAfterSec: number): void;
  /** The next `times` calls of `method` (to `chatId` only, if given) fail with this error. */
  failNext(
    method: string,
    times: number,
    error: { code: number; description: string; parameters?: Record<string, unknown> },
    chatId?: number,
  ): void;
  /** The next `times` calls of `method` (to `chatId` only, if given) have their connection cut, unanswered. */
  dropNext(method: string, times: number, chatId?: number): void;
  rejectHtml(predicate: ((raw: string) => boolean) | undefined): void;
  /** The next call of `method` (to `chatId` only, if given) is handled only once the returned function is called. */
  holdNext(method: string, chatId?: number): () => void;
  /** The next call of `method` (to `chatId` only, if given) is handled at once, answered only once the returned function is called. */
  holdAnswerOf(method: string, chatId?: number): () => void;
  /** File downloads wait until the returned function is called. */
  holdDownloads(): () => void;
  /** Another limit than Telegram's 50 MB for a request body (a smaller one keeps a test's upload small). */
  setUploadLimit(bytes: number): void;
  /**
   * As a self-hosted Bot API server run with `--local` (on): getFile gives the file's absolute path
   * on its disk (`<dir>/<token>/documents/…`, dir LOCAL_FILES_DIR unless given). With `dir` given,
   * getFile writes the file there first, as the server downloads it to its working directory; without,
   * the path is on no disk the test can read (the server on another machine). `web` (default on): a web
   * server in front of it serves GET /file/bot<token>/<that path>; off, every file URL is 404, as the
   * Bot API server itself serves no files. `folder`: the folder its paths name instead of the bot's
   * token (a server that gives paths out of the bot's own folder).
   */
  setLocalMode(on: boolean, opts?: { dir?: string; web?: boolean; folder?: string }): void;
  /** The method of each call refused as over the upload limit (413), oldest first. */
  tooLarge: string[];
  /** The method (or file path's last part) of each request whose body began to arrive, oldest first. */
  receiving: string[];
  /** The method of each request whose client went away before its body's end, oldest first. */
  cutShort: string[];
  /** How many body bytes have arrived so far in calls of `method`, all calls together (each chunk wakes waitFor). */
  bodyBytes(method: string): number;
  /** How many connections to the emulator are open now (a change wakes waitFor). */
  connections(): number;
  /** A file the bot can download (getFile), for media a test builds itself (replacesMedia): its ids and size. */
  storesFile(bytes: Uint8Array, ext: string): { file_id: string; file_unique_id: string; file_size: number };
  /** The path of each file download asked for, oldest first, as it arrives (held or not). */
  downloads: string[];
  /** The path of each file asked for by HEAD (answered with its headers only, not a download), oldest first. */
  fileHeads: string[];
  restartUpdateIds(next: number): void;
  /** Any other update, its one field as given; returns its update id. */
  pushes(update: Record<string, unknown>): number;
  /** An admin closes a forum topic: messages sent into it are refused (400 TOPIC_CLOSED). */
  closesTopic(chatId: number, topicId: number): void;
  /** An admin deletes a forum topic with its messages: messages sent into it are refused (400 message thread not found). */
  deletesTopic(chatId: number, topicId: number): void;
  /** An admin reopens a closed forum topic: the forum_topic_reopened service message comes from inside it. */
  reopensTopic(chatId: number, topicId: number): number;
  /** A basic group becomes a supergroup: both service messages arrive, and the old id is refused from then on. */
  migrates(groupId: number, supergroupId: number): void;
  close(): Promise<void>;
}

type Json = Record<string, unknown>;

/** The kinds of file a bot sends that the emulator keeps (their bytes in the message). */
type UploadKind = 'document' | 'photo' | 'voice' | 'audio' | 'video';

class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly description: string,
    readonly parameters?: Json | undefined,
  ) {
    super(description);
  }
}

const MAX_TEXT = 4096;
/** Where a self-hosted Bot API server keeps its files (setLocalMode), as in its Docker images. */
export const LOCAL_FILES_DIR = '/var/lib/telegram-bot-api';

/**
 * The calls under a chat's flood control: the messages sent or changed there, which Telegram
 * counts (not "typing…", nor a deletion or a lookup).
 */
const floodLimited = (method: string) =>
  method !== 'sendChatAction' && /^(send|edit|copy|forward|stop)/.test(method);
/**
 * How early a call may come before the end of its chat's flood wait: the client counts the wait
 * from when the 429 reached it, after the emulator answered, but its timers may fire a few ms early.
 */
const FLOOD_GRACE_MS = 50;

/** The Last-Modified of every file the emulator serves. */
const FILE_LAST_MODIFIED = 'Mon, 07 Dec 2026 09:00:00 GMT';

/**
 * The one span `Range` asks of a file of `size` bytes (first and last byte), as nginx reads it:
 * undefined when the whole file is the answer (no Range, one of other units or of several spans,
 * an If-Range that is not the file's ETag or Last-Modified), 'unsatisfiable' when it starts past the end.
 */
function byteRange(
  headers: http.IncomingHttpHeaders,
  size: number,
  validators: { etag: string; 'last-modified': string },
): [number, number] | 'unsatisfiable' | undefined {
  const range = headers.range;
  const ifRange = headers['if-range'];
  if (ifRange !== undefined && ifRange !== validators.etag && ifRange !== validators['last-modified'])
    return undefined;
  const m = range === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(range.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const last = Math.min(Number(m[2]), size);
    return last === 0 ? 'unsatisfiable' : [size - last, size - 1];
  }
  const start = Number(m[1]);
  // A last byte before the first: the header is ignored.
  if (m[2] !== '' && Number(m[2]) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return [start, m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)];
}

/**
 * Whether a conditional GET finds the file unchanged, as nginx reads it: If-None-Match (a list, or
 * `*`) when given, else If-Modified-Since compared with the Last-Modified.
 */
function notModified(
  headers: http.IncomingHttpHeaders,
  validators: { etag: string; 'last-modified': string },
): boolean {
  const none = headers['if-none-match'];
  if (none !== undefined) return none.split(',').some((t) => [validators.etag, '*'].includes(t.trim()));
  const since = Date.parse(headers['if-modified-since'] ?? '');
  return Number.isFinite(since) && since >= Date.parse(validators['last-modified']);
}

/** Bots upload files of up to 50 MB (sendDocument in the Bot API); a bigger body gets nginx's 413. */
export const UPLOAD_LIMIT = 50 * 1024 * 1024;
/** The emojis a bot may react with (ReactionTypeEmoji in the Bot API); any other is REACTION_INVALID. */
const REACTION_EMOJIS = new Set([
  ...'👍 👎 ❤ 🔥 🥰 👏 😁 🤔 🤯 😱 🤬 😢 🎉 🤩 🤮 💩 🙏 👌 🕊 🤡 🥱 🥴 😍 🐳 🌚 🌭 💯 🤣 ⚡ 🍌 🏆 💔 🤨 😐 🍓 🍾 💋 🖕 😈 😴 😭 🤓 👻 👀 🎃 🙈 😇 😨 🤝 ✍ 🤗 🫡 🎅 🎄 ☃ 💅 🤪 🗿 🆒 💘 🙉 🦄 😘 💊 🙊 😎 👾 🤷 😡'.split(
    ' ',
  ),
  '❤\u200d🔥',
  '👨\u200d💻',
  '🤷\u200d♂',
  '🤷\u200d♀',
]);
const NOT_MODIFIED =
  'Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message';

export async function startFakeTelegram(
  opts: {
    token?: string;
    /**
     * false: no flood control after a 429 (see floodUntil), for a test whose client waits on a
     * clock of its own (the throttler's tests move time without it passing here). Default true.
     */
    floodControl?: boolean;
  } = {},
): Promise<FakeTelegram> {
  const token = opts.token ?? '123456:FAKE-token';
  const botId = Number(token.split(':')[0]) || 123456;
  const botUsername = 'brainstem_test_bot';
  const changed = new EventEmitter();
  changed.setMaxListeners(0);

  const calls: FakeCall[] = [];
  const chats = new Map<number, FakeMessage[]>();
  const nextMessageId = new Map<number, number>();
  const drafts = new Map<number, { draftId: number; text: string }[]>();
  const commands = new Map<string, { command: string; description: string }[]>();
  const menus = new Map<string, { command: string; description: string }[]>();
  const polling: FakePolling = {
    calls: 0,
    maxConcurrent: 0,
    conflicts: 0,
    waiting: false,
    allowedUpdates: undefined,
    confirmed: 0,
  };
  let waitingPolls = 0;
  /** Ends the poll still waiting with 409 when a newer one waits too. */
  let endCurrentPoll: (() => void) | undefined;
  const callbackAnswers: { callbackQueryId: string; text?: string }[] = [];
  const reactions: FakeReaction[] = [];
  const users = new Map<number, { firstName: string; languageCode?: string }>();
  const files = new Map<string, { path: string; bytes: Uint8Array }>();
  /**
   * Until when (Date.now()) each chat is under flood control after a 429 to a message sent or
   * changed there: Telegram answers 429 again, with what is left of the wait, to such a call made
   * before its retry_after is over. A client that ignores retry_after is refused, not let through.
   */
  const floodUntil = new Map<number, number>();
  /** Injected failures per method: an API error, or `drop` (the connection is cut). */
  const injected = new Map<string, { times: number; error: ApiError | 'drop'; chatId?: number }[]>();
  let htmlRejects: ((raw: string) => boolean) | undefined;
  const downloads: string[] = [];
  const fileHeads: string[] = [];
  /** Calls held on their way (holdNext): the next one that matches waits for `released`. */
  const holds: { method: string; chatId?: number; released: Promise<void> }[] = [];
  /** Answers held (holdAnswerOf): the next matching call is handled, its answer waits for `released`. */
  const answerHolds: { method: string; chatId?: number; released: Promise<void> }[] = [];
  /** While set, file downloads wait for it (holdDownloads). */
  let downloadsHeld: Promise<void> | undefined;
  /** The largest request body taken: Telegram's 50 MB for an upload (setUploadLimit). */
  let uploadLimit = UPLOAD_LIMIT;
  /** setLocalMode: getFile gives absolute paths, as a local Bot API server does. */
  let localMode = false;
  /** setLocalMode's working directory when the test gave one (files are written there), and its web server. */
  let localDir: string | undefined;
  let localWeb = true;
  let localFolder: string | undefined;
  const tooLarge: string[] = [];
  const receiving: string[] = [];
  const cutShort: string[] = [];
  const bytesIn = new Map<string, number>();

  const updates: Json[] = [];
  let nextUpdateId = 1;
  let nextFileId = 1;
  let nextCallbackId = 1;
  let nextAlbumId = 1;

  const chatMessages = (chatId: number) => {
    let list = chats.get(chatId);
    if (!list) {
      list = [];
      chats.set(chatId, list);
    }
    return list;
  };
  const allocId = (chatId: number) => {
    const id = nextMessageId.get(chatId) ?? 1;
    nextMessageId.set(chatId, id + 1);
    return id;
  };
  const updateLog: Json[] = [];
  const releasedAt = new Map<number, number>();
  const pushUpdate = (update: Json) => {
    const full = { update_id: nextUpdateId++, ...update };
    updates.push(full);
    updateLog.push(full);
    changed.emit('change');
  };

  /** Each user message as it was last sent in an update (message or edited_message), by `chat:message id`. */
  const userMessages = new Map<string, Json>();

  /** Groups a user with a topic was made in: forum supergroups. */
  const forums = new Set<number>();
  /** The topics of each forum, by thread id: open, or closed by an admin (a deleted one is gone). */
  const topics = new Map<number, Map<number, 'open' | 'closed'>>();
  /** Groups made basic groups (type `group`); those upgraded since, with their supergroup's id. */
  const basicGroups = new Set<number>();
  const migrated = new Map<number, number>();
  const chatObject = (chatId: number) =>
    chatId > 0
      ? { id: chatId, type: 'private', first_name: users.get(chatId)?.firstName ?? 'User' }
      : {
          id: chatId,
          type: basicGroups.has(chatId) ? 'group' : 'supergroup',
          title: `Group ${chatId}`,
          ...(forums.has(chatId) ? { is_forum: true } : {}),
        };
  /**
   * The topic a message is sent into, as Telegram checks it in a forum: a topic it has, still open
   * (the General topic, thread 1, is addressed without a thread id: with it, it is not found).
   */
  const checkThread = (chatId: number, p: Json) => {
    if (p.message_thread_id === undefined || !forums.has(chatId)) return;
    const state = topics.get(chatId)?.get(Number(p.message_thread_id));
    if (state === undefined) throw new ApiError(400, 'Bad Request: message thread not found');
    if (state === 'closed') throw new ApiError(400, 'Bad Request: TOPIC_CLOSED');
  };
  const userObject = (id: number) => ({
    id,
    is_bot: false,
    first_name: users.get(id)?.firstName ?? `User${id}`,
    ...(users.get(id)?.languageCode ? { language_code: users.get(id)?.languageCode } : {}),
  });
  const botUser = { id: botId, is_bot: true, first_name: 'brainstem', username: botUsername };

  /**
   * What a message in a forum topic carries, as Telegram sends it: its thread, and (unless it replies
   * to another message) a "reply" to the topic's opening service message.
   */
  const topicFields = (chatId: number, topicId: number): Json => ({
    message_thread_id: topicId,
    ...(forums.has(chatId) ? { is_topic_message: true } : {}),
    reply_to_message: {
      message_id: topicId,
      date: Math.floor(Date.now() / 1000),
      chat: chatObject(chatId),
      forum_topic_created: { name: `Topic ${topicId}`, icon_color: 7322096 },
    },
  });

  /** A message as a reply_to_message shows it: Telegram does not nest the reply's own reply. */
  const repliedObject = (m: FakeMessage): Json =>
    m.from === 'bot'
      ? messageObject(m, false)
      : {
          message_id: m.messageId,
          date: Math.floor(Date.now() / 1000),
          chat: chatObject(m.chatId),
          text: m.text,
        };

  /** The Bot API shape of a message the bot sent (`withReply`: with its topic and reply_to_message). */
  const messageObject = (m: FakeMessage, withReply = true): Json => ({
    message_id: m.messageId,
    date: Math.floor(Date.now() / 1000),
    chat: chatObject(m.chatId),
    from: botUser,
    ...(withReply ? replyFieldsOf(m) : {}),
    ...(m.document
      ? {
          document: { file_id: 'doc', file_unique_id: 'doc', file_name: m.document.fileName },
          caption: m.text,
        }
      : m.photo
        ? {
            photo: [{ file_id: 'photo', file_unique_id: 'photo', width: 1, height: 1 }],
            caption: m.text,
          }
        : m.voice
          ? { voice: { file_id: 'voice', file_unique_id: 'voice', duration: 1 }, caption: m.text }
          : m.audio
            ? {
                audio: {
                  file_id: 'audio',
                  file_unique_id: 'audio',
                  duration: 1,
                  file_name: m.audio.fileName,
                },
                caption: m.text,
              }
            : m.video
              ? {
                  video: { file_id: 'video', file_unique_id: 'video', width: 1, height: 1, duration: 1 },
                  caption: m.text,
                }
              : { text: m.text }),
    ...(m.mediaGroupId ? { media_group_id: m.mediaGroupId } : {}),
    ...(m.entities.length ? { entities: m.entities } : {}),
    ...(m.edits > 0 ? { edit_date: Math.floor(Date.now() / 1000) } : {}),
    ...(m.replyMarkup ? { reply_markup: m.replyMarkup } : {}),
  });

  const storeBotMessage = (chatId: number, fields: Partial<FakeMessage> & { text: string; raw: string }) => {
    const m: FakeMessage = {
      chatId,
      messageId: allocId(chatId),
      from: 'bot',
      entities: [],
      edits: 0,
      history: [fields.text],
      deleted: false,
      ...fields,
    };
    chatMessages(chatId).push(m);
    return m;
  };

  /** A file the bot sent (a document, photo, voice note, audio or video), its caption parsed like a text. */
  const storeUpload = (p: Json, kind: UploadKind, mediaGroupId?: string) => {
    const chatId = chatIdOf(p);
    checkThread(chatId, p);
    const upload = p[kind] as MultipartFile | string | undefined;
    if (upload === undefined) throw new ApiError(400, `Bad Request: there is no ${kind} in the request`);
    const caption = typeof p.caption === 'string' ? p.caption : '';
    const parsed = caption ? parseText(caption, p.parse_mode) : { text: '', entities: [] };
    const file: FakeFile =
      typeof upload === 'object'
        ? { fileName: upload.name, size: upload.size, bytes: upload.bytes }
        : { fileName: String(upload), size: 0, bytes: new Uint8Array() };
    const replyTo = (p.reply_parameters as { message_id?: number } | undefined)?.message_id;
    return storeBotMessage(chatId, {
      text: parsed.text,
      raw: caption,
      entities: parsed.entities,
      ...(p.parse_mode ? { parseMode: String(p.parse_mode) } : {}),
      ...(replyTo ? { replyTo } : {}),
      ...topicOfParams(p),
      ...(mediaGroupId ? { mediaGroupId } : {}),
      [kind]: file,
    });
  };

  /**
   * An album: `media` is a list of InputMedia whose `media` names an uploaded part
   * (`attach://<part>`) or a file id / URL; 2 to 10 of them, one message each, one
   * media_group_id, each with its own caption.
   */
  const storeAlbum = (p: Json) => {
    const media = p.media;
    if (!Array.isArray(media) || media.length < 2 || media.length > 10)
      throw new ApiError(400, 'Bad Request: wrong number of media in the album: 2 to 10 are taken');
    const group = `album${nextAlbumId++}`;
    const items = (media as Json[]).map((item) => {
      const kind = item.type;
      if (kind !== 'photo' && kind !== 'video' && kind !== 'document' && kind !== 'audio')
        throw new ApiError(400, `Bad Request: can't use media of type ${String(kind)} in an album`);
      const ref = String(item.media ?? '');
      const file = ref.startsWith('attach://') ? p[ref.slice(9)] : ref;
      if (file === undefined || file === '')
        throw new ApiError(400, `Bad Request: there is no ${ref.slice(9) || 'media'} in the request`);
      return {
        ...item,
        chat_id: p.chat_id,
        message_thread_id: p.message_thread_id,
        [kind]: file,
        kind: kind as UploadKind,
      };
    });
    return items.map((item) => messageObject(storeUpload(item, item.kind, group)));
  };

  /** The topic and reply_to_message of a bot message: the replied message if it is still there. */
  const replyFieldsOf = (m: FakeMessage): Json => {
    const replied =
      m.replyTo === undefined
        ? undefined
        : chats.get(m.chatId)?.find((x) => x.messageId === m.replyTo && !x.deleted);
    return {
      ...(m.topicId !== undefined ? topicFields(m.chatId, m.topicId) : {}),
      ...(replied ? { reply_to_message: repliedObject(replied) } : {}),
    };
  };

  const topicOfParams = (p: Json): { topicId?: number } =>
    p.message_thread_id === undefined ? {} : { topicId: Number(p.message_thread_id) };

  /** A message the bot may edit: its own (Telegram refuses an edit of another's message). */
  const findMessage = (chatId: number, messageId: number) => {
    const m = chats.get(chatId)?.find((x) => x.messageId === messageId && !x.deleted);
    if (!m) throw new ApiError(400, 'Bad Request: message to edit not found');
    if (m.from !== 'bot') throw new ApiError(400, "Bad Request: message can't be edited");
    return m;
  };

  /** Parses a text the way Telegram does for the given parse mode; throws Telegram's 400s. */
  const parseText = (raw: unknown, parseMode: unknown): { text: string; entities: FakeEntity[] } => {
    if (typeof raw !== 'string' || raw.trim().length === 0) {
      throw new ApiError(400, 'Bad Request: message text is empty');
    }
    // Half an emoji (a surrogate without its pair) is not UTF-8: Telegram refuses the whole text.
    if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(raw)) {
      throw new ApiError(400, 'Bad Request: text must be encoded in UTF-8');
    }
    let parsed: { text: string; entities: FakeEntity[] };
    if (parseMode === 'HTML') {
      if (htmlRejects?.(raw)) {
        throw new ApiError(
          400,
          'Bad Request: can\'t parse entities: Unsupported start tag "x" at byte offset 0',
        );
      }
      parsed = parseTelegramHtml(raw);
    } else if (parseMode === undefined) {
      parsed = { text: raw, entities: [] };
    } else {
      throw new ApiError(400, `Bad Request: the emulator does not support parse_mode ${String(parseMode)}`);
    }
    if (parsed.text.length > MAX_TEXT) throw new ApiError(400, 'Bad Request: message is too long');
    if (parsed.text.trim().length === 0) throw new ApiError(400, 'Bad Request: message text is empty');
    return trimmed(parsed);
  };

  const chatIdOf = (params: Json): number => {
    const id = Number(params.chat_id);
    if (!Number.isInteger(id) || id === 0) throw new ApiError(400, 'Bad Request: chat not found');
    return id;
  };

  const methods: Record<string, (params: Json) => unknown> = {
    getMe: () => ({ ...botUser, can_join_groups: true, can_read_all_group_messages: false }),
    deleteWebhook: () => true,
    setMyCommands: (p) => {
      const lang = typeof p.language_code === 'string' ? p.language_code : '';
      const list = (p.commands as { command: string; description: string }[]) ?? [];
      if (list.length > 100) throw new ApiError(400, 'Bad Request: BOT_COMMANDS_TOO_MUCH');
      menus.set(menuKey(p), list);
      if (menuKey(p).startsWith('default|')) commands.set(lang, list);
      return true;
    },
    deleteMyCommands: (p) => {
      menus.delete(menuKey(p));
      if (menuKey(p).startsWith('default|'))
        commands.delete(typeof p.language_code === 'string' ? p.language_code : '');
      return true;
    },
    getMyCommands: (p) => menus.get(menuKey(p)) ?? [],
    getWebhookInfo: () => ({ url: '', has_custom_certificate: false, pending_update_count: updates.length }),
    sendChatAction: (p) => {
      chatIdOf(p);
      return true;
    },
    answerCallbackQuery: (p) => {
      callbackAnswers.push({
        callbackQueryId: String(p.callback_query_id),
        ...(typeof p.text === 'string' ? { text: p.text } : {}),
      });
      return true;
    },
    sendMessage: (p) => {
      const chatId = chatIdOf(p);
      checkThread(chatId, p);
      const { text, entities } = parseText(p.text, p.parse_mode);
      const replyTo = (p.reply_parameters as { message_id?: number } | undefined)?.message_id;
      const m = storeBotMessage(chatId, {
        text,
        raw: String(p.text),
        entities,
        ...(p.parse_mode ? { parseMode: String(p.parse_mode) } : {}),
        ...(p.reply_markup ? { replyMarkup: p.reply_markup } : {}),
        ...(replyTo ? { replyTo } : {}),
        ...topicOfParams(p),
      });
      return messageObject(m);
    },
    editMessageText: (p) => {
      const chatId = chatIdOf(p);
      const m = findMessage(chatId, Number(p.message_id));
      const { text, entities } = parseText(p.text, p.parse_mode);
      const markup = p.reply_markup;
      if (
        text === m.text &&
        JSON.stringify(entities) === JSON.stringify(m.entities) &&
        JSON.stringify(markup) === JSON.stringify(m.replyMarkup)
      ) {
        throw new ApiError(400, NOT_MODIFIED);
      }
      m.text = text;
      m.raw = String(p.text);
      m.entities = entities;
      m.replyMarkup = markup;
      if (p.parse_mode) m.parseMode = String(p.parse_mode);
      else delete m.parseMode;
      m.edits++;
      m.history.push(text);
      return messageObject(m);
    },
    editMessageReplyMarkup: (p) => {
      const m = findMessage(chatIdOf(p), Number(p.message_id));
      if (JSON.stringify(p.reply_markup) === JSON.stringify(m.replyMarkup))
        throw new ApiError(400, NOT_MODIFIED);
      m.replyMarkup = p.reply_markup;
      return messageObject(m);
    },
    deleteMessage: (p) => {
      const m = chats.get(chatIdOf(p))?.find((x) => x.messageId === Number(p.message_id) && !x.deleted);
      if (!m) throw new ApiError(400, 'Bad Request: message to delete not found');
      m.deleted = true;
      return true;
    },
    getFile: (p) => {
      const f = files.get(String(p.file_id));
      if (!f) throw new ApiError(400, 'Bad Request: invalid file_id');
      const onDisk = `${localDir ?? LOCAL_FILES_DIR}/${localFolder ?? token}/${f.path}`;
      if (localMode && localDir !== undefined) {
        mkdirSync(path.dirname(onDisk), { recursive: true });
        writeFileSync(onDisk, f.bytes);
      }
      return {
        file_id: String(p.file_id),
        file_unique_id: `u${String(p.file_id)}`,
        file_size: f.bytes.length,
        file_path: localMode ? onDisk : f.path,
      };
    },
    sendDocument: (p) => messageObject(storeUpload(p, 'document')),
    sendPhoto: (p) => messageObject(storeUpload(p, 'photo')),
    sendVoice: (p) => messageObject(storeUpload(p, 'voice')),
    sendAudio: (p) => messageObject(storeUpload(p, 'audio')),
    sendVideo: (p) => messageObject(storeUpload(p, 'video')),
    sendMediaGroup: (p) => storeAlbum(p),
    setMessageReaction: (p) => {
      const chatId = chatIdOf(p);
      const m = chats.get(chatId)?.find((x) => x.messageId === Number(p.message_id) && !x.deleted);
      if (!m) throw new ApiError(400, 'Bad Request: MESSAGE_ID_INVALID');
      const list = p.reaction === undefined ? [] : p.reaction;
      if (!Array.isArray(list)) throw new ApiError(400, 'Bad Request: REACTION_INVALID');
      // Bots react like non-premium users: one reaction at most, from the standard emoji list.
      if (list.length > 1) throw new ApiError(400, 'Bad Request: REACTIONS_TOO_MANY');
      const emojis = list.map((r: unknown) => {
        const { type, emoji } = (r ?? {}) as { type?: unknown; emoji?: unknown };
        if (type !== 'emoji' || typeof emoji !== 'string' || !REACTION_EMOJIS.has(emoji)) {
          throw new ApiError(400, 'Bad Request: REACTION_INVALID');
        }
        return emoji;
      });
      m.reaction = emojis;
      reactions.push({ chatId, messageId: m.messageId, emojis, isBig: p.is_big === true });
      return true;
    },
    sendMessageDraft: (p) => {
      const chatId = chatIdOf(p);
      if (chatId < 0) throw new ApiError(400, 'Bad Request: TEXTDRAFT_PEER_INVALID');
      const draftId = Number(p.draft_id);
      if (!Number.isInteger(draftId) || draftId === 0)
        throw new ApiError(400, 'Bad Request: invalid draft_id');
      const text =
        typeof p.text === 'string' && p.text.length > 0 ? parseText(p.text, p.parse_mode).text : '';
      const list = drafts.get(chatId) ?? [];
      list.push({ draftId, text });
      drafts.set(chatId, list);
      return true;
    },
  };

  // Long polls waiting for updates.
  const pollers = new Set<() => void>();
  changed.on('change', () => {
    for (const wake of [...pollers]) wake();
  });

  /** Telegram leaves these out unless the poller names them. */
  const OPT_IN = ['chat_member', 'message_reaction', 'message_reaction_count'];
  const wanted = (u: Json) => {
    const kind = Object.keys(u).find((k) => k !== 'update_id') ?? '';
    const allowed = polling.allowedUpdates;
    return allowed === undefined || allowed.length === 0 ? !OPT_IN.includes(kind) : allowed.includes(kind);
  };

  async function getUpdates(params: Json, res: http.ServerResponse): Promise<unknown> {
    let ended = false;
    const mine = () => {
      ended = true;
      for (const wake of [...pollers]) wake();
    };
    // As tdlib's Client::do_get_updates: only a poll that is going to wait ends the one waiting.
    const waits = () => {
      if (endCurrentPoll === mine) return;
      endCurrentPoll?.();
      endCurrentPoll = mine;
      polling.waiting = true;
    };
    waitingPolls++;
    polling.maxConcurrent = Math.max(polling.maxConcurrent, waitingPolls);
    try {
      return await pollUpdates(params, res, () => ended, waits);
    } finally {
      waitingPolls--;
      polling.calls++;
      if (endCurrentPoll === mine) {
        endCurrentPoll = undefined;
        polling.waiting = false;
      }
    }
  }

  async function pollUpdates(
    params: Json,
    res: http.ServerResponse,
    ended: () => boolean,
    waits: () => void,
  ): Promise<unknown> {
    if (params.allowed_updates !== undefined) polling.allowedUpdates = params.allowed_updates as string[];
    const offset = Number(params.offset ?? 0);
    // As tdlib's queue: an offset more than 10 past the next id is "in the future", confirms
    // nothing, and is answered from the first update.
    if (offset > 0 && offset <= nextUpdateId + 10) {
      while (updates.length > 0 && Number(updates[0]?.update_id) < offset) updates.shift();
      if (offset - 1 > polling.confirmed) {
        polling.confirmed = offset - 1;
        changed.emit('change');
      }
    }
    // Updates of types the poller does not take are never created, as at Telegram.
    for (let i = updates.length - 1; i >= 0; i--) if (!wanted(updates[i] as Json)) updates.splice(i, 1);
    const limit = Math.min(100, Math.max(1, Number(params.limit ?? 100)));
    const timeoutMs = Math.max(0, Number(params.timeout ?? 0)) * 1000;
    const deadline = Date.now() + timeoutMs;
    while (updates.filter(wanted).length === 0 && Date.now() < deadline && !res.destroyed && !ended()) {
      waits();
      await new Promise<void>((resolve) => {
        const wake = () => {
          pollers.delete(wake);
          clearTimeout(timer);
          // One poll may loop many times (calls that bring no update): leave no listener behind.
          res.off('close', wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.max(0, deadline - Date.now()));
        pollers.add(wake);
        res.once('close', wake);
      });
    }
    if (ended()) {
      polling.conflicts++;
      throw new ApiError(
        409,
        'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running',
      );
    }
    return updates.filter(wanted).slice(0, limit);
  }

  function takeInjected(method: string, params: Json): ApiError | 'drop' | undefined {
    const queue = injected.get(method) ?? [];
    const index = queue.findIndex((f) => f.chatId === undefined || f.chatId === Number(params.chat_id));
    const hit = queue[index];
    if (!hit) return undefined;
    hit.times--;
    if (hit.times <= 0) queue.splice(index, 1);
    return hit.error;
  }

  async function handleApi(method: string, params: Json, res: http.ServerResponse): Promise<void> {
    const call: FakeCall = { method, params, at: Date.now(), ok: true };
    let status = 200;
    let body: Json;
    const floodChat =
      opts.floodControl !== false && floodLimited(method) ? Number(params.chat_id) : Number.NaN;
    try {
      const left = (floodUntil.get(floodChat) ?? 0) - call.at;
      if (left > FLOOD_GRACE_MS) {
        const retryAfter = Math.ceil(left / 1000);
        throw new ApiError(429, `Too Many Requests: retry after ${retryAfter}`, { retry_after: retryAfter });
      }
      const failure = takeInjected(method, params);
      if (failure === 'drop') {
        calls.push({ ...call, ok: false, description: 'connection dropped' });
        changed.emit('change');
        res.socket?.destroy();
        return;
      }
      if (failure) throw failure;
      // The chat a call names: its chat_id, or its command menu scope's (setMyCommands and co.).
      const scope = typeof params.scope === 'string' ? JSON.parse(params.scope) : params.scope;
      const upgradedTo = migrated.get(Number(params.chat_id ?? (scope as Json | undefined)?.chat_id));
      if (upgradedTo !== undefined) {
        throw new ApiError(400, 'Bad Request: group chat was upgraded to a supergroup chat', {
          migrate_to_chat_id: upgradedTo,
        });
      }
      let result: unknown;
      if (method === 'getUpdates') result = await getUpdates(params, res);
      else {
        const impl = methods[method];
        if (!impl) throw new ApiError(404, 'Not Found: method not found');
        result = impl(params);
      }
      body = { ok: true, result };
    } catch (err) {
      const e = err instanceof ApiError ? err : new ApiError(500, `Internal Server Error: ${String(err)}`);
      const wait = e.code === 429 ? Number(e.parameters?.retry_after) : Number.NaN;
      if (Number.isFinite(wait) && Number.isInteger(floodChat)) {
        floodUntil.set(floodChat, Math.max(floodUntil.get(floodChat) ?? 0, call.at + wait * 1000));
      }
      status = e.code;
      call.ok = false;
      call.errorCode = e.code;
      call.description = e.description;
      body = {
        ok: false,
        error_code: e.code,
        description: e.description,
        ...(e.parameters ? { parameters: e.parameters } : {}),
      };
    }
    if (method !== 'getUpdates') {
      calls.push(call);
      changed.emit('change');
    }
    const heldAnswer = answerHolds.findIndex(
      (h) => h.method === method && (h.chatId === undefined || h.chatId === Number(params.chat_id)),
    );
    if (heldAnswer >= 0) await answerHolds.splice(heldAnswer, 1)[0]?.released;
    if (res.destroyed) return;
    if (method === 'getUpdates' && Array.isArray(body.result)) {
      const at = performance.now();
      for (const u of body.result as Json[]) releasedAt.set(Number(u.update_id), at);
    }
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const named = url.pathname.split('/').pop() ?? '';
    req.once('data', () => {
      receiving.push(named);
      changed.emit('change');
    });
    const raw = await readBody(req, uploadLimit, (size) => {
      bytesIn.set(named, (bytesIn.get(named) ?? 0) + size);
      changed.emit('change');
    }).catch((): typeof CUT_SHORT => CUT_SHORT);
    if (raw === CUT_SHORT) {
      // The client went away before its body's end (an upload abandoned): nothing to answer.
      cutShort.push(named);
      changed.emit('change');
      res.destroy();
      return;
    }
    if (raw === TOO_LARGE) {
      // As Telegram's nginx: answered once the body passes the limit (at once when its
      // Content-Length says so), the rest read and dropped so the client can read the answer.
      tooLarge.push(named);
      changed.emit('change');
      req.resume();
      res.writeHead(413, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: false, error_code: 413, description: 'Request Entity Too Large' }));
      return;
    }
    const fileMatch = /^\/file\/bot([^/]+)\/(.+)$/.exec(url.pathname);
    if (fileMatch) {
      const asked = decodeURIComponent(fileMatch[2] ?? '');
      // A local server's absolute path, as the web server in front of it (aiogram's nginx) maps it.
      const local = `${localDir ?? LOCAL_FILES_DIR}/${localFolder ?? token}/`;
      const filePath = localMode && asked.startsWith(local) ? asked.slice(local.length) : asked;
      // Node's server sends no body to a HEAD: its answer is the headers a GET would get.
      (req.method === 'HEAD' ? fileHeads : downloads).push(asked);
      changed.emit('change');
      await downloadsHeld;
      const f = [...files.values()].find((x) => x.path === filePath);
      if (fileMatch[1] !== token || !f || (localMode && !localWeb)) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: false, error_code: 404, description: 'Not Found' }));
        return;
      }
      const bytes = Buffer.from(f.bytes);
      const validators = {
        'accept-ranges': 'bytes',
        etag: `"${f.path.replace(/\W/g, '')}-${bytes.length.toString(16)}"`,
        'last-modified': FILE_LAST_MODIFIED,
      };
      if (notModified(req.headers, validators)) {
        res.writeHead(304, validators);
        res.end();
        return;
      }
      const span = byteRange(req.headers, bytes.length, validators);
      if (span === 'unsatisfiable') {
        res.writeHead(416, { ...validators, 'content-range': `bytes */${bytes.length}` });
        res.end();
        return;
      }
      if (span) {
        const [start, end] = span;
        res.writeHead(206, {
          ...validators,
          'content-type': 'application/octet-stream',
          'content-length': end - start + 1,
          'content-range': `bytes ${start}-${end}/${bytes.length}`,
        });
        res.end(bytes.subarray(start, end + 1));
        return;
      }
      res.writeHead(200, {
        ...validators,
        'content-type': 'application/octet-stream',
        'content-length': bytes.length,
      });
      res.end(bytes);
      return;
    }
    const apiMatch = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(url.pathname);
    if (!apiMatch) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: false, error_code: 404, description: 'Not Found' }));
      return;
    }
    if (apiMatch[1] !== token) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: false, error_code: 401, description: 'Unauthorized' }));
      return;
    }
    let params: Json;
    try {
      params = await parseParams(req.headers['content-type'], raw, url);
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: false, error_code: 400, description: 'Bad Request: unreadable body' }));
      return;
    }
    const method = apiMatch[2] ?? '';
    const held = holds.findIndex(
      (h) => h.method === method && (h.chatId === undefined || h.chatId === Number(params.chat_id)),
    );
    if (held >= 0) await holds.splice(held, 1)[0]?.released;
    await handleApi(method, params, res);
  });
  let openConnections = 0;
  server.on('connection', (socket) => {
    openConnections++;
    socket.once('close', () => {
      openConnections--;
      changed.emit('change');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const apiRoot = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  function incomingMessage(userId: number, chatId: number, fields: Json, topicId?: number): number {
    const messageId = allocId(chatId);
    const text =
      typeof fields.text === 'string'
        ? fields.text
        : typeof fields.caption === 'string'
          ? fields.caption
          : '';
    chatMessages(chatId).push({
      chatId,
      messageId,
      from: 'user',
      text,
      raw: text,
      entities: [],
      edits: 0,
      history: [text],
      deleted: false,
      ...(topicId !== undefined ? { topicId } : {}),
    });
    const message: Json = {
      message_id: messageId,
      date: Math.floor(Date.now() / 1000),
      chat: chatObject(chatId),
      from: userObject(userId),
      ...(topicId !== undefined ? topicFields(chatId, topicId) : {}),
      ...fields,
    };
    userMessages.set(`${chatId}:${messageId}`, message);
    pushUpdate({ message });
    return messageId;
  }

  /**
   * The edited_message Telegram sends for an edit of a user's message: the whole message as it now
   * is (its date, topic, reply and media kept; `edit_date` set), the new text as its text, or as its
   * caption when it has media.
   */
  function editedMessage(chatId: number, messageId: number, newText: string): Json {
    const sent = userMessages.get(`${chatId}:${messageId}`) ?? {};
    const { text, entities, caption, caption_entities, ...rest } = sent;
    const edited: Json = {
      ...rest,
      edit_date: Math.floor(Date.now() / 1000),
      ...(text === undefined
        ? captionFields(newText)
        : { text: newText, ...textEntities('entities', newText) }),
    };
    userMessages.set(`${chatId}:${messageId}`, edited);
    return edited;
  }

  /** What a reply carries: the replied-to message as the chat holds it, and the quoted part. */
  function repliedFields(chatId: number, reply: { replyTo: number; quote?: string }): Json {
    const m = chats.get(chatId)?.find((x) => x.messageId === reply.replyTo && !x.deleted);
    if (!m) throw new Error(`fake telegram: no message ${reply.replyTo} in chat ${chatId} to reply to`);
    return {
      reply_to_message: repliedObject(m),
      ...(reply.quote !== undefined
        ? {
            quote: {
              text: reply.quote,
              position: Math.max(0, m.text.indexOf(reply.quote)),
              is_manual: true,
            },
          }
        : {}),
    };
  }

  /** A photo as Telegram describes it: a thumbnail (its first bytes) and the full size. */
  function photoSizes(bytes: Uint8Array): Json[] {
    const fileId = addFile(bytes, 'jpg');
    const thumb = addFile(bytes.slice(0, Math.min(16, bytes.length)), 'jpg');
    return [
      { file_id: thumb, file_unique_id: `u${thumb}`, width: 90, height: 90, file_size: 16 },
      { file_id: fileId, file_unique_id: `u${fileId}`, width: 800, height: 600, file_size: bytes.length },
    ];
  }

  function addFile(bytes: Uint8Array, ext: string): string {
    const id = `file${nextFileId++}`;
    files.set(id, { path: `${ext === 'jpg' ? 'photos' : 'documents'}/${id}.${ext}`, bytes });
    return id;
  }

  const fake: FakeTelegram = {
    token,
    apiRoot,
    botId,
    botUsername,
    calls,
    commands,
    menus,
    polling,
    updateLog,
    releasedAt,
    callbackAnswers,
    reactions,
    user(id, o = {}) {
      users.set(id, {
        firstName: o.firstName ?? `User${id}`,
        ...(o.languageCode ? { languageCode: o.languageCode } : {}),
      });
      const chatId = o.chatId ?? id;
      const topicId = o.topicId;
      if (topicId !== undefined) {
        forums.add(chatId);
        const known = topics.get(chatId) ?? new Map<number, 'open' | 'closed'>();
        if (!known.has(topicId)) known.set(topicId, 'open');
        topics.set(chatId, known);
      }
      if (o.basicGroup && chatId < 0) basicGroups.add(chatId);
      const incoming = (fields: Json) => incomingMessage(id, chatId, fields, topicId);
      const replacesMedia: FakeUser['replacesMedia'] = (messageId, media, caption) => {
        const sent = userMessages.get(`${chatId}:${messageId}`);
        if (!sent) throw new Error(`fake telegram: no user message ${messageId} in chat ${chatId}`);
        // What Telegram lets a user swap in: the old media goes, whatever its kind.
        const {
          caption: _old,
          caption_entities: _entities,
          photo: _photo,
          document: _document,
          video: _video,
          animation: _animation,
          audio: _audio,
          ...rest
        } = sent;
        const edited: Json = {
          ...rest,
          ...media,
          edit_date: Math.floor(Date.now() / 1000),
          ...captionFields(caption),
        };
        userMessages.set(`${chatId}:${messageId}`, edited);
        pushUpdate({ edited_message: edited });
        return nextUpdateId - 1;
      };
      return {
        id,
        chatId,
        says(text, reply) {
          return incoming({
            text,
            ...textEntities('entities', text),
            ...(reply ? repliedFields(chatId, reply) : {}),
          });
        },
        presses(messageId, data) {
          const m = chats.get(chatId)?.find((x) => x.messageId === messageId && x.from === 'bot');
          if (!m) throw new Error(`fake telegram: no bot message ${messageId} in chat ${chatId}`);
          const callbackId = `cb${nextCallbackId++}`;
          pushUpdate({
            callback_query: {
              id: callbackId,
              from: userObject(id),
              message: messageObject(m),
              chat_instance: String(chatId),
              data,
            },
          });
          return callbackId;
        },
        sends(fields) {
          return incoming(fields);
        },
        sendsPhoto(bytes, caption) {
          return incoming({ photo: photoSizes(bytes), ...captionFields(caption) });
        },
        sendsAlbum(photos, caption) {
          const group = `album${nextFileId}`;
          // Pushed in one go, as Telegram sends an album: the next getUpdates answer holds every part.
          return photos.map((bytes, i) =>
            incoming({
              photo: photoSizes(bytes),
              media_group_id: group,
              ...(i === 0 ? captionFields(caption) : {}),
            }),
          );
        },
        sendsDocument(fileName, bytes, caption, mimeType = 'application/octet-stream') {
          const ext = fileName.includes('.') ? (fileName.split('.').pop() ?? 'bin') : 'bin';
          const fileId = addFile(bytes, ext);
          return incoming({
            document: {
              file_id: fileId,
              file_unique_id: `u${fileId}`,
              file_name: fileName,
              mime_type: mimeType,
              file_size: bytes.length,
            },
            ...captionFields(caption),
          });
        },
        sendsDocuments(files, caption) {
          const group = `docs${nextFileId}`;
          return files.map((f, i) => {
            const ext = f.name.includes('.') ? (f.name.split('.').pop() ?? 'bin') : 'bin';
            const fileId = addFile(f.bytes, ext);
            return incoming({
              document: {
                file_id: fileId,
                file_unique_id: `u${fileId}`,
                file_name: f.name,
                mime_type: f.mimeType ?? 'application/octet-stream',
                file_size: f.bytes.length,
              },
              media_group_id: group,
              ...(i === 0 ? captionFields(caption) : {}),
            });
          });
        },
        sendsVoice(bytes = new Uint8Array([1, 2, 3]), caption) {
          const fileId = addFile(bytes, 'oga');
          return incoming({
            voice: {
              file_id: fileId,
              file_unique_id: `u${fileId}`,
              duration: 2,
              mime_type: 'audio/ogg',
              file_size: bytes.length,
            },
            ...captionFields(caption),
          });
        },
        sendsAudio(fileName, bytes, mimeType = 'audio/mpeg') {
          const fileId = addFile(bytes, fileName.split('.').pop() ?? 'mp3');
          return incoming({
            audio: {
              file_id: fileId,
              file_unique_id: `u${fileId}`,
              duration: 3,
              file_name: fileName,
              mime_type: mimeType,
              file_size: bytes.length,
            },
          });
        },
        sendsVideoNote(bytes) {
          const fileId = addFile(bytes, 'mp4');
          return incoming({
            video_note: {
              file_id: fileId,
              file_unique_id: `u${fileId}`,
              length: 240,
              duration: 2,
              file_size: bytes.length,
            },
          });
        },
        edits(messageId, newText) {
          const m = chats.get(chatId)?.find((x) => x.messageId === messageId && x.from === 'user');
          if (!m) throw new Error(`fake telegram: no user message ${messageId} in chat ${chatId}`);
          m.text = newText;
          m.raw = newText;
          m.edits++;
          m.history.push(newText);
          pushUpdate({ edited_message: editedMessage(chatId, messageId, newText) });
          return nextUpdateId - 1;
        },
        replacesPhoto(messageId, bytes, caption) {
          return replacesMedia(messageId, { photo: photoSizes(bytes) }, caption);
        },
        replacesMedia,
        reacts(messageId, emoji) {
          pushUpdate({
            message_reaction: {
              chat: chatObject(chatId),
              message_id: messageId,
              user: userObject(id),
              date: Math.floor(Date.now() / 1000),
              old_reaction: [],
              new_reaction: [{ type: 'emoji', emoji }],
            },
          });
          return nextUpdateId - 1;
        },
        deletes(messageId) {
          const m = chats.get(chatId)?.find((x) => x.messageId === messageId && !x.deleted);
          if (!m) throw new Error(`fake telegram: no message ${messageId} in chat ${chatId}`);
          m.deleted = true;
          changed.emit('change');
        },
        sendsSticker() {
          const fileId = addFile(new Uint8Array([1]), 'webp');
          return incoming({
            sticker: {
              file_id: fileId,
              file_unique_id: `u${fileId}`,
              type: 'regular',
              width: 512,
              height: 512,
              is_animated: false,
              is_video: false,
              emoji: '👍',
            },
          });
        },
      };
    },
    messages: (chatId) => chats.get(chatId) ?? [],
    botMessages: (chatId) => (chats.get(chatId) ?? []).filter((m) => m.from === 'bot' && !m.deleted),
    lastBotMessage: (chatId) => fake.botMessages(chatId).at(-1),
    drafts: (chatId) => drafts.get(chatId) ?? [],
    callsOf: (method, chatId) =>
      calls.filter(
        (c) => c.method === method && (chatId === undefined || Number(c.params.chat_id) === chatId),
      ),
    waitFor(check, o = {}) {
      const timeoutMs = o.timeoutMs ?? 30_000;
      return new Promise((resolve, reject) => {
        const attempt = () => {
          let value: ReturnType<typeof check>;
          try {
            value = check();
          } catch (err) {
            finish();
            reject(err);
            return;
          }
          if (value !== undefined && value !== false && value !== null) {
            finish();
            resolve(value);
          }
        };
        const finish = () => {
          changed.off('change', attempt);
          clearInterval(poll);
          clearTimeout(timer);
        };
        const poll = setInterval(attempt, 25);
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`fake telegram: condition not met within ${timeoutMs} ms`));
        }, timeoutMs);
        changed.on('change', attempt);
        attempt();
      });
    },
    restartUpdateIds(next) {
      nextUpdateId = next;
    },
    pushes(update) {
      const id = nextUpdateId;
      pushUpdate(update);
      return id;
    },
    closesTopic(chatId, topicId) {
      if (!topics.get(chatId)?.has(topicId))
        throw new Error(`fake telegram: no topic ${topicId} in ${chatId}`);
      topics.get(chatId)?.set(topicId, 'closed');
    },
    reopensTopic(chatId, topicId) {
      if (topics.get(chatId)?.get(topicId) !== 'closed')
        throw new Error(`fake telegram: topic ${topicId} in ${chatId} is not closed`);
      topics.get(chatId)?.set(topicId, 'open');
      // Done by an admin: the last one who wrote there.
      const last = [...userMessages.entries()].filter(([key]) => key.startsWith(`${chatId}:`)).at(-1)?.[1];
      const by = Number((last?.from as { id?: number } | undefined)?.id ?? [...users.keys()][0] ?? 1);
      return incomingMessage(by, chatId, { forum_topic_reopened: {} }, topicId);
    },
    deletesTopic(chatId, topicId) {
      if (!topics.get(chatId)?.delete(topicId))
        throw new Error(`fake telegram: no topic ${topicId} in ${chatId}`);
      for (const m of chats.get(chatId) ?? []) if (m.topicId === topicId) m.deleted = true;
      changed.emit('change');
    },
    migrates(groupId, supergroupId) {
      if (!basicGroups.has(groupId)) throw new Error(`fake telegram: ${groupId} is not a basic group`);
      const date = Math.floor(Date.now() / 1000);
      // Done by a member: the last one who wrote there.
      const last = [...userMessages.entries()].filter(([key]) => key.startsWith(`${groupId}:`)).at(-1)?.[1];
      const by = userObject(
        Number((last?.from as { id?: number } | undefined)?.id ?? [...users.keys()][0] ?? 1),
      );
      // As Telegram sends them: the old group's last message, then the supergroup's first.
      pushUpdate({
        message: {
          message_id: allocId(groupId),
          date,
          chat: chatObject(groupId),
          from: by,
          migrate_to_chat_id: supergroupId,
        },
      });
      basicGroups.delete(groupId);
      migrated.set(groupId, supergroupId);
      pushUpdate({
        message: {
          message_id: allocId(supergroupId),
          date,
          chat: chatObject(supergroupId),
          from: by,
          migrate_from_chat_id: groupId,
        },
      });
    },
    rateLimit(method, times, retryAfterSec) {
      const list = injected.get(method) ?? [];
      list.push({
        times,
        error: new ApiError(429, `Too Many Requests: retry after ${retryAfterSec}`, {
          retry_after: retryAfterSec,
        }),
      });
      injected.set(method, list);
    },
    dropNext(method, times, chatId) {
      const list = injected.get(method) ?? [];
      list.push({ times, error: 'drop', ...(chatId !== undefined ? { chatId } : {}) });
      injected.set(method, list);
    },
    failNext(method, times, error, chatId) {
      const list = injected.get(method) ?? [];
      list.push({
        times,
        error: new ApiError(error.code, error.description, error.parameters),
        ...(chatId !== undefined ? { chatId } : {}),
      });
      injected.set(method, list);
    },
    rejectHtml(predicate) {
      htmlRejects = predicate;
    },
    holdNext(method, chatId) {
      let release: () => void = () => undefined;
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      holds.push({ method, released, ...(chatId !== undefined ? { chatId } : {}) });
      return release;
    },
    holdAnswerOf(method, chatId) {
      let release: () => void = () => undefined;
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      answerHolds.push({ method, released, ...(chatId !== undefined ? { chatId } : {}) });
      return release;
    },
    downloads,
    fileHeads,
    tooLarge,
    receiving,
    cutShort,
    bodyBytes: (method) => bytesIn.get(method) ?? 0,
    connections: () => openConnections,
    setUploadLimit(bytes) {
      uploadLimit = bytes;
    },
    setLocalMode(on, opts = {}) {
      localMode = on;
      localDir = on ? opts.dir : undefined;
      localWeb = !on || opts.web !== false;
      localFolder = on ? opts.folder : undefined;
    },
    storesFile(bytes, ext) {
      const id = addFile(bytes, ext);
      return { file_id: id, file_unique_id: `u${id}`, file_size: bytes.length };
    },
    holdDownloads() {
      let release: () => void = () => undefined;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      downloadsHeld = held;
      return () => {
        release();
        if (downloadsHeld === held) downloadsHeld = undefined;
      };
    },
    async close() {
      for (const wake of [...pollers]) wake();
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
  return fake;
}

/**
 * The entities Telegram gives a text or a caption (its `entities` or `caption_entities`), by
 * offset: a bot_command for each /command that starts it or follows a space ("@bot /mode" has
 * one too), and a mention for each @username in it. A bot's own command matching, and whether a
 * group message addresses the bot, read them.
 */
function textEntities(field: 'entities' | 'caption_entities', text: string): Json {
  const entities = [
    ...[...text.matchAll(/(?<=^|\s)\/[A-Za-z0-9_]+(?:@[A-Za-z0-9_]+)?/g)].map((m) => ({
      type: 'bot_command',
      offset: m.index,
      length: m[0].length,
    })),
    ...[...text.matchAll(/(?<![\w/@])@[A-Za-z0-9_]{5,32}\b/g)].map((m) => ({
      type: 'mention',
      offset: m.index,
      length: m[0].length,
    })),
  ].sort((a, b) => a.offset - b.offset);
  return entities.length ? { [field]: entities } : {};
}

/** A media message's caption, with its entities as Telegram parses them; nothing when there is none. */
function captionFields(caption: string | undefined): Json {
  return caption ? { caption, ...textEntities('caption_entities', caption) } : {};
}

/** The key of a command list: `<scope type>[:<chat id>[:<user id>]]|<language code>`. */
function menuKey(p: Json): string {
  const scope = (p.scope ?? { type: 'default' }) as { type?: string; chat_id?: unknown; user_id?: unknown };
  const parts = [scope.type ?? 'default', scope.chat_id, scope.user_id].filter((x) => x !== undefined);
  return `${parts.join(':')}|${typeof p.language_code === 'string' ? p.language_code : ''}`;
}

/** The body, decoded from a Content-Encoding as the Bot API's server decodes it (gzip, deflate). */
/** What readBody gives for a body over the upload limit (its rest left unread). */
const TOO_LARGE = Symbol('too large');
/** A body whose client went away before its end. */
const CUT_SHORT = Symbol('cut short');

async function readBody(
  req: http.IncomingMessage,
  limit: number,
  onChunk: (size: number) => void,
): Promise<Buffer | typeof TOO_LARGE> {
  if (Number(req.headers['content-length'] ?? 0) > limit) return TOO_LARGE;
  const chunks: Buffer[] = [];
  let size = 0;
  // Not `for await`: leaving that loop early would destroy the request, and the 413 with it.
  for await (const chunk of req.iterator({ destroyOnReturn: false })) {
    size += (chunk as Buffer).length;
    onChunk((chunk as Buffer).length);
    if (size > limit) return TOO_LARGE;
    chunks.push(chunk as Buffer);
  }
  const body = Buffer.concat(chunks);
  const encoding = req.headers['content-encoding'];
  try {
    if (encoding === 'gzip') return gunzipSync(body);
    if (encoding === 'deflate') return inflateSync(body);
  } catch {
    // Left as it came: its parameters then cannot be read, and the call gets a 400.
  }
  return body;
}

interface MultipartFile {
  name: string;
  size: number;
  bytes: Uint8Array;
}

/** JSON, urlencoded, query string or multipart (files become a MultipartFile). */
async function parseParams(contentType: string | undefined, raw: Buffer, url: URL): Promise<Json> {
  const params: Json = Object.fromEntries(url.searchParams);
  if (raw.length === 0) return params;
  const type = contentType ?? '';
  if (type.startsWith('application/json'))
    return { ...params, ...(JSON.parse(raw.toString('utf8')) as Json) };
  if (type.startsWith('multipart/form-data')) {
    const boundary = /boundary=("?)([^";]+)\1/.exec(type)?.[2];
    if (!boundary) throw new Error('multipart without a boundary');
    // grammY writes unquoted filenames, which strict parsers refuse: a small lenient parser instead.
    for (const part of raw.toString('latin1').split(`--${boundary}`)) {
      const split = part.indexOf('\r\n\r\n');
      if (split === -1) continue;
      const head = part.slice(0, split);
      const body = part.slice(split + 4).replace(/\r\n$/, '');
      const name = /name="([^"]*)"/i.exec(head)?.[1];
      if (!name) continue;
      const filename = /filename="?([^";\r\n]*)"?/i.exec(head)?.[1];
      const bytes = Buffer.from(body, 'latin1');
      params[name] =
        filename !== undefined
          ? ({ name: filename, size: bytes.length, bytes: new Uint8Array(bytes) } satisfies MultipartFile)
          : maybeJson(bytes.toString('utf8'));
    }
    // Files are sent as `attach://<part>`: resolve them to the part itself.
    for (const [key, value] of Object.entries(params)) {
      if (typeof value === 'string' && value.startsWith('attach://')) params[key] = params[value.slice(9)];
    }
    return params;
  }
  for (const [k, v] of new URLSearchParams(raw.toString('utf8'))) params[k] = maybeJson(v);
  return params;
}

function maybeJson(value: string): unknown {
  if (!/^[[{]/.test(value)) return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

const ENTITY_OF_TAG: Record<string, string> = {
  b: 'bold',
  strong: 'bold',
  i: 'italic',
  em: 'italic',
  u: 'underline',
  ins: 'underline',
  s: 'strikethrough',
  strike: 'strikethrough',
  del: 'strikethrough',
  'tg-spoiler': 'spoiler',
  span: 'spoiler',
  a: 'text_link',
  code: 'code',
  pre: 'pre',
  blockquote: 'blockquote',
  'tg-emoji': 'custom_emoji',
};

const NAMED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"' };

/**
 * Telegram's HTML parse mode: only its tags, only `&lt; &gt; &amp; &quot;` and
 * numeric entities, every tag closed in order. Anything else is a 400
 * "can't parse entities", as Telegram answers.
 */
export function parseTelegramHtml(html: string): { text: string; entities: FakeEntity[] } {
  const fail = (why: string, at: number): never => {
    throw new ApiError(400, `Bad Request: can't parse entities: ${why} at byte offset ${at}`);
  };
  let text = '';
  const entities: FakeEntity[] = [];
  const open: { tag: string; start: number; url?: string; language?: string }[] = [];
  let i = 0;
  while (i < html.length) {
    const ch = html[i];
    if (ch === '<') {
      const close = html.indexOf('>', i);
      if (close === -1) fail('Unclosed start tag', i);
      const inner = html.slice(i + 1, close);
      if (inner.startsWith('/')) {
        const name = inner.slice(1).trim().toLowerCase();
        const top = open.pop();
        if (!top || top.tag !== name) {
          fail(
            `Unmatched end tag at byte offset ${i}, expected "</${top?.tag ?? ''}>", found "</${name}>"`,
            i,
          );
        }
        const pre = open.at(-1);
        if (name === 'code' && pre?.tag === 'pre') {
          // <pre><code class="language-x"> is one pre entity carrying the language.
          if (top?.language) pre.language = top.language;
        } else if (top && text.length > top.start) {
          entities.push({
            type: ENTITY_OF_TAG[name] ?? name,
            offset: top.start,
            length: text.length - top.start,
            ...(top.url ? { url: top.url } : {}),
            ...(top.language ? { language: top.language } : {}),
          });
        }
      } else {
        const m = /^([a-z-]+)((?:\s+[a-z-]+\s*=\s*"[^"]*")*)\s*$/i.exec(inner);
        const name = m?.[1]?.toLowerCase();
        if (!m || !name || !(name in ENTITY_OF_TAG))
          fail(`Unsupported start tag "${inner.split(/\s/)[0]}"`, i);
        const attrs = Object.fromEntries(
          [...(m?.[2] ?? '').matchAll(/([a-z-]+)\s*=\s*"([^"]*)"/gi)].map((a) => [
            (a[1] ?? '').toLowerCase(),
            decodeEntities(a[2] ?? '', fail, i),
          ]),
        );
        if (name === 'a' && !attrs.href) fail('Can\'t find "href" attribute of the tag "a"', i);
        if (name === 'span' && attrs.class !== 'tg-spoiler')
          fail('Tag "span" must have class "tg-spoiler"', i);
        const language =
          name === 'code' && attrs.class?.startsWith('language-') ? attrs.class.slice(9) : undefined;
        open.push({
          tag: name ?? '',
          start: text.length,
          ...(attrs.href ? { url: attrs.href } : {}),
          ...(language ? { language } : {}),
        });
      }
      i = close + 1;
    } else if (ch === '&') {
      const semi = html.indexOf(';', i);
      const name = semi === -1 ? '' : html.slice(i + 1, semi);
      text += decodeEntities(`&${name};`, fail, i);
      i = semi + 1;
    } else {
      text += ch;
      i++;
    }
  }
  if (open.length > 0)
    fail(`Can't find end tag corresponding to start tag "${open.at(-1)?.tag}"`, html.length);
  return { text, entities: entities.sort((a, b) => a.offset - b.offset) };
}

/**
 * A text as Telegram keeps it: without the whitespace at its start and end (a trailing paragraph
 * break is dropped, so an edit that only adds one changes nothing), its entities moved with it and
 * cut to what is left (one over whitespace alone goes).
 */
function trimmed(parsed: { text: string; entities: FakeEntity[] }): { text: string; entities: FakeEntity[] } {
  const start = parsed.text.length - parsed.text.trimStart().length;
  const text = parsed.text.trim();
  const entities = parsed.entities.flatMap((e) => {
    const from = Math.max(0, e.offset - start);
    const to = Math.min(text.length, e.offset + e.length - start);
    return to > from ? [{ ...e, offset: from, length: to - from }] : [];
  });
  return { text, entities };
}

function decodeEntities(s: string, fail: (why: string, at: number) => never, at: number): string {
  return s.replace(/&([^;]*);?/g, (whole, name: string) => {
    if (!whole.endsWith(';')) return fail('Character entity without a semicolon', at);
    if (NAMED[name]) return NAMED[name];
    const num = /^#(?:x([0-9a-f]+)|([0-9]+))$/i.exec(name);
    if (num) return String.fromCodePoint(num[1] ? Number.parseInt(num[1], 16) : Number(num[2]));
    return fail(`Unsupported HTML entity "&${name};"`, at);
  });
}
