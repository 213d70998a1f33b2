import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import type { Logger } from '../../src/logger.js';
import { ALL_UPDATE_TYPES, apiError, apiResult, type BotApiAnswer, DEFAULT_UPDATE_TYPES } from './bot-api.js';
import type { CommandsMerge } from './commands-merge.js';
import { readCallBody } from './request-body.js';
import type { UpdateQueue } from './update-queue.js';

/**
 * The methods the front answers itself, never sent to Telegram: getUpdates
 * (served from the queue), the webhook methods (a webhook set at Telegram
 * would stop brainstem's own polling), logOut and close (they would log the
 * bot out of the cloud Bot API, or close it, for brainstem too), and the
 * command menu (merged with brainstem's). Method names are matched without
 * case, as Telegram does, so no spelling slips past to Telegram.
 */

export type LocalMethod = (params: Record<string, unknown>, signal: AbortSignal) => Promise<BotApiAnswer>;

/** Parameters of a local method are small; anything bigger is not a Bot API call the front answers. */
const MAX_PARAMS_BYTES = 1024 * 1024;

const CONFLICT =
  'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running';

/** Telegram's longest long poll, in seconds. */
const MAX_TIMEOUT_S = 50;

/**
 * An integer parameter read as Telegram reads it: its leading integer (0 when
 * there is none), clamped to the range, never refused.
 */
const clampedInt = (min: number, max: number) =>
  z.unknown().transform((v) => {
    if (v === undefined || v === null || v === '') return undefined;
    const n = Number.parseInt(String(v), 10);
    return Math.min(max, Math.max(min, Number.isNaN(n) ? 0 : n));
  });
/** Telegram's booleans: `true` in JSON, or the text `true` or `1`. */
const flag = z
  .unknown()
  .transform(
    (v) => v === true || v === 1 || (typeof v === 'string' && ['true', '1'].includes(v.toLowerCase())),
  );

/**
 * `allowed_updates` read as Telegram reads it: a list of type names (JSON, or
 * its text in a form field; the queue matches the names, see updateTypes);
 * anything else (null, which some clients send for "unset", or text that is
 * no list) keeps the previous setting, never refused.
 */
const allowedUpdates = z.unknown().transform((v) => {
  const list = typeof v === 'string' ? safeJson(v) : v;
  return Array.isArray(list) && list.every((t) => typeof t === 'string') ? (list as string[]) : undefined;
});

const getUpdatesSchema = z.object({
  offset: clampedInt(-(2 ** 31), 2 ** 31 - 1).optional(),
  limit: clampedInt(1, 100).optional(),
  timeout: clampedInt(0, MAX_TIMEOUT_S).optional(),
  allowed_updates: allowedUpdates.optional(),
});

export function localMethods(deps: {
  queue: UpdateQueue;
  commands: CommandsMerge;
  logger: Logger;
}): Map<string, LocalMethod> {
  const { queue, commands, logger } = deps;
  const refusedLocally = (method: string) => async () => {
    logger.warn({ method }, `OpenClaw called ${method}: answered by the front, not sent to Telegram`);
    return apiResult(true);
  };
  const deleteWebhook: LocalMethod = async (params) => {
    if (flag.parse(params.drop_pending_updates)) queue.dropPending();
    else {
      // As at Telegram, whose setWebhook with no url keeps the list given (when it drops nothing).
      const asked = allowedUpdates.parse(params.allowed_updates);
      if (asked !== undefined) queue.remember(asked);
    }
    return apiResult(true);
  };
  const methods: Record<string, LocalMethod> = {
    getUpdates: async (params, signal) => {
      const p = getUpdatesSchema.safeParse(params);
      if (!p.success)
        return apiError(400, `Bad Request: ${p.error.issues[0]?.message ?? 'invalid parameters'}`);
      const r = await queue.take(
        {
          offset: p.data.offset,
          limit: p.data.limit,
          timeout: p.data.timeout,
          allowedUpdates: p.data.allowed_updates,
        },
        signal,
      );
      return r.conflict ? apiError(409, CONFLICT) : { status: 200, body: `{"ok":true,"result":${r.json}}` };
    },
    // An empty or absent url removes the webhook at Telegram, as deleteWebhook does: some clients call it so.
    setWebhook: async (params, signal) =>
      (params.url ?? '') === ''
        ? deleteWebhook(params, signal)
        : apiError(
            400,
            "Bad Request: brainstem's Bot API front serves updates by getUpdates only; use long polling (no webhook)",
          ),
    deleteWebhook,
    getWebhookInfo: async () =>
      apiResult({
        url: '',
        has_custom_certificate: false,
        pending_update_count: queue.waiting().count,
        ...allowedUpdatesInfo(queue.allowedUpdates()),
      }),
    logOut: refusedLocally('logOut'),
    close: refusedLocally('close'),
    setMyCommands: (params) => commands.set(params),
    deleteMyCommands: (params) => commands.deleteList(params),
    getMyCommands: async (params) => commands.get(params),
  };
  return new Map(Object.entries(methods).map(([name, fn]) => [name.toLowerCase(), fn]));
}

/**
 * getWebhookInfo's `allowed_updates`: as Telegram, the types the poller asked
 * for, said only when they are not the default set; in the Bot API's order,
 * then those of a newer Bot API than brainstem knows, which the queue takes too.
 */
function allowedUpdatesInfo(allowed: readonly string[] | undefined): { allowed_updates?: string[] } {
  if (allowed === undefined || allowed.length === 0) return {};
  const isDefault =
    allowed.length === DEFAULT_UPDATE_TYPES.length && DEFAULT_UPDATE_TYPES.every((t) => allowed.includes(t));
  if (isDefault) return {};
  const known = ALL_UPDATE_TYPES.filter((t) => allowed.includes(t));
  return { allowed_updates: [...known, ...allowed.filter((t) => !known.includes(t))] };
}

/**
 * A local method's parameters, from the query string and a JSON, urlencoded
 * or multipart body: the four ways the Bot API takes them. None of these
 * methods takes a file.
 */
export async function readParams(
  req: IncomingMessage,
  search: string,
): Promise<{ ok: true; params: Record<string, unknown> } | { ok: false; answer: BotApiAnswer }> {
  const params: Record<string, unknown> = Object.fromEntries(new URLSearchParams(search));
  const read = await readCallBody(req, MAX_PARAMS_BYTES);
  if (!read.ok) return read;
  const body = read.bytes;
  if (body.length === 0) return { ok: true, params };
  const raw = body.toString('utf8');
  const contentType = req.headers['content-type'] ?? '';
  const type = contentType.toLowerCase();
  if (type.startsWith('application/json')) {
    const body = safeJson(raw);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return { ok: false, answer: apiError(400, 'Bad Request: the JSON body must be an object') };
    }
    return { ok: true, params: { ...params, ...(body as Record<string, unknown>) } };
  }
  if (type.startsWith('application/x-www-form-urlencoded')) {
    return { ok: true, params: { ...params, ...Object.fromEntries(new URLSearchParams(raw)) } };
  }
  // The boundary is case-sensitive: the header goes on as it came.
  if (type.startsWith('multipart/form-data')) return multipartParams(body, contentType, params);
  return {
    ok: false,
    answer: apiError(400, 'Bad Request: send the parameters of this method as JSON or form fields'),
  };
}

async function multipartParams(
  body: Buffer,
  type: string,
  params: Record<string, unknown>,
): Promise<{ ok: true; params: Record<string, unknown> } | { ok: false; answer: BotApiAnswer }> {
  let form: FormData;
  try {
    form = await new Response(new Uint8Array(body), { headers: { 'content-type': type } }).formData();
  } catch {
    return { ok: false, answer: apiError(400, 'Bad Request: the multipart body could not be read') };
  }
  const fields: Record<string, unknown> = {};
  for (const [name, value] of form) {
    if (typeof value !== 'string') {
      return { ok: false, answer: apiError(400, `Bad Request: ${name}: this method takes no file`) };
    }
    fields[name] = value;
  }
  return { ok: true, params: { ...params, ...fields } };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
