/**
 * The Bot API front, outbound: a second grammY bot (OpenClaw's channel) with
 * its apiRoot on brainstem's front, against the Bot API emulator. Its calls
 * reach Telegram as they came and Telegram's answers come back as they were;
 * what must never reach Telegram is answered by the front.
 */
import net from 'node:net';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import Fastify from 'fastify';
import { Bot, type GrammyError, InputFile } from 'grammy';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Passthrough } from '../handlers/telegram-front/passthrough.js';
import { frontRoutes } from '../handlers/telegram-front/routes.js';
import { createLogger } from '../src/logger.js';
import { DOWNSTREAM_COMMANDS, type Downstream, startDownstream } from './helpers/downstream-bot.js';
import { freePort } from './helpers/process.js';
import { type Harness, startHarness } from './telegram-harness.js';

let h: Harness;
let oc: Downstream;
let front: string;
const CHAT = 112;
/** A small PNG, bytes that must arrive unchanged. */
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
);

beforeAll(async () => {
  h = await startHarness({ config: { telegram: { front: { enabled: true } } } });
  front = `${h.service.url}/telegram`;
  oc = await startDownstream(front, h.tg.token);
});
afterAll(async () => {
  await oc?.stop();
  await h?.close();
});

describe('the Bot API front, outbound', () => {
  it('passes sendMessage, editMessageText and sendMessageDraft through unchanged', async () => {
    const sent = await oc.bot.api.sendMessage(CHAT, '<b>Hello</b> from OpenClaw', { parse_mode: 'HTML' });
    const stored = h.tg.botMessages(CHAT).find((m) => m.messageId === sent.message_id);
    expect(stored?.raw).toBe('<b>Hello</b> from OpenClaw');
    expect(stored?.entities).toEqual([{ type: 'bold', offset: 0, length: 5 }]);
    expect(h.tg.callsOf('sendMessage', CHAT).at(-1)?.params).toEqual({
      chat_id: CHAT,
      text: '<b>Hello</b> from OpenClaw',
      parse_mode: 'HTML',
    });

    const edited = await oc.bot.api.editMessageText(CHAT, sent.message_id, 'Edited by OpenClaw');
    expect(edited).toMatchObject({ message_id: sent.message_id, text: 'Edited by OpenClaw' });
    expect(stored?.history).toEqual(['Hello from OpenClaw', 'Edited by OpenClaw']);
    // An edit that changes nothing gets Telegram's 400 as it was, once (a 400 is not retried).
    const answered = oc.answers.length;
    await expect(
      oc.bot.api.editMessageText(CHAT, sent.message_id, 'Edited by OpenClaw'),
    ).rejects.toMatchObject({
      error_code: 400,
      description: expect.stringMatching(/^Bad Request: message is not modified: /),
    });
    expect(oc.answers.slice(answered)).toEqual([{ method: 'editMessageText', ok: false, error_code: 400 }]);

    expect(await oc.bot.api.sendMessageDraft(CHAT, 7, 'thinking…')).toBe(true);
    expect(h.tg.drafts(CHAT).at(-1)).toEqual({ draftId: 7, text: 'thinking…' });
  });

  it('streams a multipart sendPhoto with a real file through, bytes unchanged', async () => {
    const m = await oc.bot.api.sendPhoto(CHAT, new InputFile(PNG, 'dot.png'), { caption: 'a dot' });
    const stored = h.tg.botMessages(CHAT).find((x) => x.messageId === m.message_id);
    expect(stored?.photo?.fileName).toBe('dot.png');
    expect(Buffer.from(stored?.photo?.bytes ?? new Uint8Array()).equals(PNG)).toBe(true);
    expect(stored?.text).toBe('a dot');
  });

  it('passes getFile through and streams the file download', async () => {
    const bytes = Buffer.from('a document OpenClaw reads');
    h.tg.user(CHAT).sendsDocument('notes.txt', bytes);
    const update = await h.tg.waitFor(() => oc.received.find((u) => u.message?.document));
    const file = await oc.bot.api.getFile(update.message?.document?.file_id ?? '');
    expect(file.file_path).toMatch(/^documents\//);
    const res = await fetch(`${front}/file/bot${h.tg.token}/${file.file_path}`);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
  });

  it('returns a 429 with its retry_after to the caller, whose auto-retry then succeeds', async () => {
    h.tg.rateLimit('sendMessage', 1, 1);
    const before = oc.answers.length;
    await oc.bot.api.sendMessage(CHAT, 'after a 429');
    expect(oc.answers.slice(before)).toEqual([
      { method: 'sendMessage', ok: false, error_code: 429, retry_after: 1 },
      { method: 'sendMessage', ok: true },
    ]);
    const calls = h.tg.callsOf('sendMessage', CHAT).slice(-2);
    expect(calls.map((c) => c.errorCode ?? 200)).toEqual([429, 200]);
  });

  it('answers the webhook methods itself: the emulator never sees them, and sees one poller', async () => {
    // brainstem's own deleteWebhook at start is the only one Telegram gets.
    expect(h.tg.callsOf('deleteWebhook')).toHaveLength(1);
    expect(oc.answers.filter((a) => a.method === 'deleteWebhook')).toEqual([
      { method: 'deleteWebhook', ok: true },
    ]);
    expect(await oc.bot.api.getWebhookInfo()).toMatchObject({ url: '', pending_update_count: 0 });
    await expect(oc.bot.api.setWebhook('https://example.com/hook')).rejects.toThrow(/long polling/);
    expect(h.tg.callsOf('setWebhook')).toHaveLength(0);
    expect(h.tg.callsOf('getWebhookInfo')).toHaveLength(0);
    expect(await oc.bot.api.logOut()).toBe(true);
    expect(await oc.bot.api.close()).toBe(true);
    expect(h.tg.callsOf('logOut')).toHaveLength(0);
    expect(h.tg.callsOf('close')).toHaveLength(0);
    // Lower case is the same method for Telegram: it must not slip past to it.
    const lower = await fetch(`${front}/bot${h.tg.token}/logout`, { method: 'POST' });
    expect(await lower.json()).toEqual({ ok: true, result: true });
    expect(h.tg.calls.filter((c) => c.method.toLowerCase() === 'logout')).toHaveLength(0);

    expect(h.tg.polling.maxConcurrent).toBe(1);
    expect(h.tg.polling.conflicts).toBe(0);
    // brainstem asks Telegram for its own types and OpenClaw's (reactions included).
    expect(h.tg.polling.allowedUpdates).toEqual(
      expect.arrayContaining(['message', 'callback_query', 'edited_message', 'message_reaction']),
    );
  });

  it('merges the command menus per scope and language, OpenClaw’s /usage shown as /oc_usage', async () => {
    const names = (key: string) => h.tg.menus.get(key)?.map((c) => c.command) ?? [];
    /** What a client shows a user who is no administrator there (Telegram's order, BotCommandScope). */
    const shown = (scope: 'default' | 'all_group_chats', lang: string) =>
      (scope === 'all_group_chats'
        ? (h.tg.menus.get(`all_group_chats|${lang}`) ?? h.tg.menus.get('all_group_chats|'))
        : undefined) ??
      h.tg.menus.get(`default|${lang}`) ??
      h.tg.menus.get('default|') ??
      [];
    const brainstem = ['mode', 'bstop', 'run', 'usage', 'bstatus', 'creds', 'upgrade', 'bhelp'];
    const openclaw = ['new', 'stop', 'status', 'help', 'model', 'oc_usage'];
    await h.tg.waitFor(() => names('default|').includes('oc_usage') && names('default|fr').includes('new'));
    expect(names('default|')).toEqual([...brainstem, ...openclaw]);
    // French users see brainstem's French list and OpenClaw's (which has no French one).
    expect(names('default|fr')).toEqual([...brainstem, ...openclaw]);
    expect(h.tg.menus.get('default|fr')?.[0]?.description).toMatch(/changer de cerveau/);
    expect(h.tg.menus.get('default|')?.find((c) => c.command === 'oc_usage')?.description).toBe(
      'OpenClaw: Token usage of this session',
    );
    // OpenClaw's group list is its default one: Telegram's fallback shows it, no key is sent for it.
    expect([...h.tg.menus.keys()].sort()).toEqual(['default|', 'default|fr']);
    expect(shown('all_group_chats', 'fr')).toEqual(h.tg.menus.get('default|fr'));
    // OpenClaw reads back its own list, as it set it.
    expect(await oc.bot.api.getMyCommands()).toEqual(DOWNSTREAM_COMMANDS);
    // Setting the same list again costs Telegram no call.
    const calls = h.tg.callsOf('setMyCommands').length;
    await oc.bot.api.setMyCommands(DOWNSTREAM_COMMANDS);
    expect(h.tg.callsOf('setMyCommands')).toHaveLength(calls);

    // A group list of OpenClaw's own: a French user in a group sees it after brainstem's French list.
    const group = { scope: { type: 'all_group_chats' } } as const;
    await oc.bot.api.setMyCommands(DOWNSTREAM_COMMANDS.slice(0, 2), group);
    expect(shown('all_group_chats', 'fr').map((c) => c.command)).toEqual([...brainstem, 'new', 'stop']);
    expect(shown('all_group_chats', 'fr')[0]?.description).toMatch(/changer de cerveau/);
    expect(shown('all_group_chats', 'de').map((c) => c.command)).toEqual([...brainstem, 'new', 'stop']);
    expect(shown('all_group_chats', 'de')[0]?.description).not.toMatch(/changer de cerveau/);
    expect(shown('default', 'fr').map((c) => c.command)).toEqual([...brainstem, ...openclaw]);
    expect(await oc.bot.api.getMyCommands(group)).toEqual(DOWNSTREAM_COMMANDS.slice(0, 2));
    // OpenClaw deleting its group list takes the French group list made from it away too.
    await oc.bot.api.deleteMyCommands(group);
    expect([...h.tg.menus.keys()].sort()).toEqual(['default|', 'default|fr']);
    // OpenClaw deleting its list leaves brainstem's, in both languages.
    await oc.bot.api.deleteMyCommands();
    expect(names('default|')).toEqual(brainstem);
    expect(names('default|fr')).toEqual(brainstem);
    await oc.bot.api.setMyCommands(DOWNSTREAM_COMMANDS);
    expect(names('default|')).toEqual([...brainstem, ...openclaw]);
  });

  it('refuses a wrong token with Telegram’s 401, and the call reaches nothing', async () => {
    const calls = h.tg.calls.length;
    for (const url of [
      `${front}/bot123456:WRONG-token/sendMessage`,
      `${front}/bot123456:WRONG-token/getUpdates`,
      `${front}/file/bot123456:WRONG-token/documents/file1.txt`,
    ]) {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ chat_id: CHAT, text: 'sneaky' }),
      });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ ok: false, error_code: 401, description: 'Unauthorized' });
    }
    expect(h.tg.calls.length).toBe(calls);
    const unknown = await fetch(`${front}/nothing-here`);
    expect(unknown.status).toBe(404);
  });

  it('takes a compressed body as Telegram does: passed on, read by a local method, decoded where it is rewritten', async () => {
    // Each on a connection of its own: one whose body was refused before its end is not reused.
    const post = async (method: string, body: Buffer, encoding: string) => {
      const dispatcher = new Agent();
      try {
        const res = await undiciFetch(`${front}/bot${h.tg.token}/${method}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-encoding': encoding },
          body: new Uint8Array(body),
          dispatcher,
        });
        const headers = Object.fromEntries(res.headers);
        return new Response(await res.arrayBuffer(), { status: res.status, headers });
      } finally {
        await dispatcher.close();
      }
    };
    const json = (value: object) => Buffer.from(JSON.stringify(value));
    // sendMessage is read whole (notice-dedupe.ts may rewrite it); editMessageText streams through.
    const sent = await post('sendMessage', gzipSync(json({ chat_id: CHAT, text: 'zipped' })), 'gzip');
    expect(sent.status).toBe(200);
    const { result } = (await sent.json()) as { result: { message_id: number } };
    const edited = await post(
      'editMessageText',
      deflateSync(json({ chat_id: CHAT, message_id: result.message_id, text: 'deflated' })),
      'deflate',
    );
    expect(edited.status).toBe(200);
    expect(h.tg.botMessages(CHAT).find((m) => m.messageId === result.message_id)?.history).toEqual([
      'zipped',
      'deflated',
    ]);
    // Answered by the front itself (its parameters read), compressed with brotli.
    const info = await post('getWebhookInfo', brotliCompressSync(json({})), 'br');
    expect(await info.json()).toMatchObject({ ok: true, result: { url: '' } });
    // A body that does not decode, and an encoding no one takes, in Telegram's shape.
    const broken = await post('getWebhookInfo', Buffer.from('not gzip at all'), 'gzip');
    expect(broken.status).toBe(400);
    expect(await broken.json()).toEqual({
      ok: false,
      error_code: 400,
      description: 'Bad Request: the body is not valid gzip',
    });
    // A body that is not gzip from its first bytes, long enough to be still arriving when it fails.
    const garbage = await post('getWebhookInfo', Buffer.alloc(4 * 1024 * 1024, 7), 'gzip');
    expect(garbage.status).toBe(400);
    // Over the front's limit for what it reads (1 MiB), as sent or once decoded: Telegram's 413,
    // on a connection still open for it (the body is not read to its end).
    const big = json({ note: 'x'.repeat(2 * 1024 * 1024) });
    for (const [body, encoding] of [
      [big, 'identity'],
      [gzipSync(big), 'gzip'],
    ] as const) {
      const tooLarge = await post('getWebhookInfo', body, encoding);
      expect(tooLarge.status).toBe(413);
      expect(await tooLarge.json()).toEqual({
        ok: false,
        error_code: 413,
        description: 'Request Entity Too Large',
      });
    }
    const unknown = await post('getWebhookInfo', json({}), 'compress');
    expect(unknown.status).toBe(415);
    expect(await unknown.json()).toEqual({
      ok: false,
      error_code: 415,
      description: 'Unsupported Media Type: Content-Encoding compress',
    });
  });

  it('answers any other HTTP method, and the bare prefix, in Telegram’s shape, never as the OpenAI endpoint', async () => {
    const calls = h.tg.calls.length;
    for (const method of ['PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const res = await fetch(`${front}/bot${h.tg.token}/sendMessage`, { method });
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('GET, POST');
      expect(await res.json()).toEqual({
        ok: false,
        error_code: 405,
        description: 'Method Not Allowed: use GET or POST',
      });
      // The token is still checked first: a wrong one learns nothing more.
      const wrong = await fetch(`${front}/bot123456:WRONG-token/sendMessage`, { method });
      expect(await wrong.json()).toEqual({ ok: false, error_code: 401, description: 'Unauthorized' });
    }
    for (const url of [front, `${front}/`]) {
      const res = await fetch(url, { method: 'PUT' });
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ ok: false, error_code: 404, description: 'Not Found' });
    }
    // A malformed %-escape never reaches a route: still said in Telegram's shape under the prefix.
    const bad = await fetch(`${front}/bot${h.tg.token}/getMe%ZZ`);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({
      ok: false,
      error_code: 400,
      description: 'Bad Request: the path is not a valid URL (a malformed %-escape?)',
    });
    expect(h.tg.calls.length).toBe(calls);
  });

  it('never writes the bot token in a log line', () => {
    const requests = h.logs.filter((l) => l.msg === 'request' && String(l.url).includes('/bot'));
    expect(requests.length).toBeGreaterThan(5);
    expect(
      requests.every(
        (l) =>
          String(l.url).startsWith('/telegram/bot<redacted>/') ||
          String(l.url).startsWith('/telegram/file/bot<redacted>/'),
      ),
    ).toBe(true);
    const all = h.logs.map((l) => JSON.stringify(l)).join('\n');
    expect(all).not.toContain(h.tg.token);
    expect(all).not.toContain(h.tg.token.split(':')[1]);
  });
});

describe('the Bot API front when brainstem cannot connect to Telegram', () => {
  it('tells the caller to make the call again after a retry_after (429): OpenClaw sends again only then, and its answer is not lost', async () => {
    const token = '123:front-unreached';
    // Nothing listens there: the connection is refused, so the call never reached Telegram.
    const passthrough = new Passthrough(`http://127.0.0.1:${await freePort()}`, token);
    const app = Fastify();
    await frontRoutes({
      prefix: '/telegram',
      token,
      local: new Map(),
      passthrough,
      uploadIdleMs: 300_000,
      stopping: () => false,
      logger: createLogger('silent'),
    })(app);
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const bot = new Bot(token, { client: { apiRoot: `${url}/telegram` } });
      const err = (await bot.api.sendMessage(CHAT, 'an answer').catch((e: unknown) => e)) as GrammyError;
      expect([err.error_code, err.parameters.retry_after]).toEqual([429, 5]);
      expect(err.description).toContain('could not connect to Telegram: ECONNREFUSED; the call was not made');
    } finally {
      await app.close();
      await passthrough.close();
    }
  });
});

describe('every route of a service with the front and the tools', () => {
  /** One request exactly as written (no client resolves `..` or re-encodes the path); its status. */
  async function statusOf(url: string, method: string, target: string): Promise<number> {
    const { port, host } = new URL(url);
    const socket = net.connect(Number(port), '127.0.0.1');
    socket.write(
      `${method} ${target} HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
    );
    const chunks: Buffer[] = [];
    for await (const chunk of socket) chunks.push(chunk as Buffer);
    return Number(Buffer.concat(chunks).toString('latin1').split(' ')[1]);
  }

  it('asks for a credential, whatever the method: the API token, or under the prefix the bot token; /health alone is open', async () => {
    const s = await startHarness({
      config: { telegram: { front: { enabled: true } } },
      parts: { bot: true, tools: true },
    });
    try {
      const open: string[] = [];
      const checked: string[] = [];
      const stack: string[] = [];
      // printRoutes draws a tree, four columns a level: `│   ├── /usage (GET, HEAD)`.
      for (const line of s.service.app.printRoutes({ commonPrefix: false }).split('\n')) {
        // A wildcard's line is a bare `*` under its parent (`/telegram`, then `*`).
        const m = /^([│├└─\s]*)(\/\S*|\*) \(([A-Z, ]+)\)$/.exec(line);
        if (!m?.[2] || !m[3]) continue;
        stack.length = (m[1]?.length ?? 0) / 4 - 1;
        stack.push(m[2] === '*' ? '/*' : m[2]);
        const route = stack.join('').replace(/:\w+/g, 'x');
        // A front route is reached with a token that is not the bot's, in both of its forms.
        const targets = route.startsWith('/telegram')
          ? ['/telegram/bot123456:WRONG-token/getMe', '/telegram/file/bot123456:WRONG-token/photos/a.jpg']
          : [route.replace('*', 'x')];
        for (const method of m[3].split(', ')) {
          for (const target of targets) {
            const status = await statusOf(s.service.url, method, target);
            checked.push(`${method} ${route}`);
            if (status !== 401) open.push(`${method} ${target} → ${status}`);
          }
        }
      }
      expect(checked).toEqual(
        expect.arrayContaining([
          'POST /api/x',
          'DELETE /mcp',
          'POST /v1/chat/completions',
          'GET /v1/models/*',
          'GET /telegram',
          'GET /telegram/*',
          'OPTIONS /telegram/*',
          'HEAD /telegram/*',
        ]),
      );
      expect(open.sort()).toEqual(['GET /health → 200', 'HEAD /health → 200']);
    } finally {
      await s.close();
    }
  });
});
