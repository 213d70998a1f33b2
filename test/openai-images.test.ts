import { randomUUID } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  realpathSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { APIError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RecordedRequest, text } from './fakes/anthropic.js';
import { type FakeLlama, startFakeLlama } from './fakes/llama.js';
import { CLAUDE_CLI } from './helpers/claude-bin.js';
import { claudeOnFake } from './helpers/claude-fake.js';
import { dataUrlPart, randomPng } from './helpers/images.js';
import { CLAUDE_BIN, startTestService, type TestService } from './helpers/service.js';

/**
 * Images through the OpenAI endpoint: the real Claude CLI against the fake
 * Messages API for Claude modes, the fake llama-server for a vision and a
 * text-only local mode.
 */

const claude = claudeOnFake();
let llama: FakeLlama;
let svc: TestService;
/** The CLI's TMPDIR: where the current CLI keeps its copies of images, apart from every other test's. */
const cliTmp = mkdtempSync(path.join(tmpdir(), 'bst-cli-tmp-'));

beforeAll(async () => {
  llama = await startFakeLlama({ chunkDelayMs: 0 });
  svc = await startTestService({
    config: {
      claude: { bin: CLAUDE_BIN, env: { ...claude.cli.env, TMPDIR: cliTmp }, maxRetries: 0 },
      llama: { baseUrl: llama.baseUrl },
      modes: { eyes: { kind: 'llama', vision: true } },
      server: { modeTag: false },
    },
  });
});
afterAll(async () => {
  await svc?.close();
  await llama?.close();
  rmSync(cliTmp, { recursive: true, force: true });
});

type Block = { type: string; text?: string; source?: { type: string; media_type: string; data: string } };

/** The blocks of the last user message of a Messages API request. */
const lastUserBlocks = (r: RecordedRequest | undefined): Block[] => {
  const content = r?.body?.messages?.filter((m) => m.role === 'user').at(-1)?.content;
  return typeof content === 'string' ? [{ type: 'text', text: content }] : ((content ?? []) as Block[]);
};
const imageBlocks = (r: RecordedRequest | undefined) => lastUserBlocks(r).filter((b) => b.type === 'image');

/** Small enough for the CLI to pass on byte for byte (it re-encodes larger ones). */
const small = () => randomPng(24, 16);

describe(`images through the OpenAI endpoint (Claude CLI ${CLAUDE_CLI})`, () => {
  it('an image_url data part reaches the Messages API as an image block, media type and bytes intact', async () => {
    const png = small();
    claude.fake.script(() => text('A small noisy picture.'));
    const before = claude.fake.mainRequests().length;
    const answer = await svc.client.chat.completions.create({
      model: 'assistant',
      user: 'img-1',
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'what is on this picture?' }, dataUrlPart(png)] },
      ],
    });
    expect(answer.choices[0]?.message.content).toBe('A small noisy picture.');
    const req = claude.fake.mainRequests()[before];
    const [image, ...more] = imageBlocks(req);
    expect(more).toEqual([]);
    expect(image?.source).toEqual({ type: 'base64', media_type: 'image/png', data: png.toString('base64') });
    expect(req?.lastUserText).toContain('what is on this picture?');
  });

  it('answers a turn made only of images, each one sent', async () => {
    const [a, b] = [small(), small()];
    claude.fake.script(() => text('Two pictures.'));
    const before = claude.fake.mainRequests().length;
    const answer = await svc.client.chat.completions.create({
      model: 'assistant',
      user: 'img-2',
      messages: [{ role: 'user', content: [dataUrlPart(a), dataUrlPart(b)] }],
    });
    expect(answer.choices[0]?.message.content).toBe('Two pictures.');
    expect(imageBlocks(claude.fake.mainRequests()[before]).map((i) => i.source?.data)).toEqual([
      a.toString('base64'),
      b.toString('base64'),
    ]);
  });

  it('tells Claude who sent an image that comes without words, by the message’s name', async () => {
    const png = small();
    // The answer depends on the name reaching the API: without it, nobody knows whose picture it is.
    claude.fake.script((r) => text(r.lastUserText.includes('alice: ') ? 'alice’s picture' : 'whose?'));
    const before = claude.fake.mainRequests().length;
    const answer = await svc.client.chat.completions.create({
      model: 'assistant',
      user: 'img-named',
      messages: [
        { role: 'user', name: 'bob', content: 'alice, show us the view' },
        { role: 'user', name: 'alice', content: [dataUrlPart(png)] },
      ],
    });
    expect(answer.choices[0]?.message.content).toBe('alice’s picture');
    const req = claude.fake.mainRequests()[before];
    expect(req?.lastUserText).toBe('bob: alice, show us the view\n\nalice: [image (image/png) attached]');
    expect(imageBlocks(req).map((i) => i.source?.data)).toEqual([png.toString('base64')]);
  });

  it('a replayed history says where an earlier image was instead of dropping it', async () => {
    claude.fake.script(() => text('Noted.'));
    const before = claude.fake.mainRequests().length;
    await svc.client.chat.completions.create({
      model: 'assistant',
      user: 'img-3',
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'look at this' }, dataUrlPart(small())] },
        { role: 'assistant', content: 'A noisy picture.' },
        { role: 'user', content: 'and what colour was it?' },
      ],
    });
    const req = claude.fake.mainRequests()[before];
    expect(req?.lastUserText).toContain('user: look at this\n[image (image/png) not shown here]');
    expect(req?.lastUserText).toContain('and what colour was it?');
    expect(imageBlocks(req)).toEqual([]);
  });

  it('refuses what is not an image it can pass on, naming the part, before any brain runs', async () => {
    const before = claude.fake.mainRequests().length;
    const refused = async (part: unknown) => {
      const err = await svc.client.chat.completions
        .create({
          model: 'assistant',
          messages: [{ role: 'user', content: [{ type: 'text', text: 'see' }, part as never] }],
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(APIError);
      const e = err as APIError;
      expect(e.status).toBe(400);
      expect(e.code).toBe('unsupported_image');
      expect(e.param).toBe('messages.0.content.1');
      return e.message;
    };
    const bmp = Buffer.concat([Buffer.from('BM'), Buffer.alloc(64)]);
    expect(await refused(dataUrlPart(bmp, 'image/bmp'))).toMatch(
      /not JPEG, PNG, GIF or WebP \(it says image\/bmp\)/,
    );
    expect(await refused({ type: 'image_url', image_url: { url: 'https://example.com/cat.png' } })).toMatch(
      /remote image URLs are not fetched; send the image itself as a data URL/,
    );
    expect(await refused({ type: 'image_url', image_url: { url: 'data:image/png;base64,%%%' } })).toMatch(
      /not valid base64/,
    );
    expect(claude.fake.mainRequests().length).toBe(before);
  });

  it('a vision llama mode gets the image_url part as the client sent it', async () => {
    const png = small();
    const part = dataUrlPart(png);
    const before = llama.requests.length;
    await svc.client.chat.completions.create({
      model: 'eyes',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'describe' }, part] }],
    });
    const sent = llama.requests.slice(before).find((r) => r.path.endsWith('/chat/completions'));
    const body = sent?.body as { messages?: { role: string; content: unknown }[] } | undefined;
    const user = body?.messages?.at(-1);
    expect(user).toEqual({ role: 'user', content: [{ type: 'text', text: 'describe' }, part] });
  });

  it('a text-only mode answers an image with a clear refusal, and nothing reaches its model', async () => {
    const before = llama.requests.length;
    const err = (await svc.client.chat.completions
      .create({
        model: 'local',
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'hello' },
          { role: 'user', content: [{ type: 'text', text: 'this:' }, dataUrlPart(small())] },
        ],
      })
      .catch((e: unknown) => e)) as APIError;
    expect(err).toBeInstanceOf(APIError);
    expect(err.status).toBe(400);
    expect(err.code).toBe('images_not_taken');
    // Named where it is, as a part a Claude mode cannot read is.
    expect(err.param).toBe('messages.2.content.1');
    expect(err.message).toMatch(/mode "local" takes no images.*modes\.local\.vision/);
    // Readiness probes of /health may come meanwhile; no chat request does.
    expect(llama.requests.slice(before).filter((r) => r.path === '/v1/chat/completions')).toEqual([]);
  });

  it('the Claude CLI’s copies of images are removed after 7 days as a new image comes, and nothing else there', async () => {
    // The current CLI keeps every image a turn is sent at <TMPDIR>/claude-<uid>/<cwd slug>/<session>/images/.
    const ask = (user: string) =>
      svc.client.chat.completions.create({
        model: 'assistant',
        user,
        messages: [
          { role: 'user', content: [{ type: 'text', text: 'and this one?' }, dataUrlPart(small())] },
        ],
      });
    claude.fake.script(() => text('Seen.'));
    await ask('img-kept-1');
    // The cwd is made for the first turn.
    const uid = process.getuid?.() ?? 0;
    const own = path.join(realpathSync(cliTmp), `claude-${uid}`);
    const cwd = realpathSync(path.join(svc.dir, 'data', 'workspaces', 'assistant'));
    const store = path.join(own, cwd.replace(/[^a-zA-Z0-9]/g, '-'));
    const copies = () =>
      readdirSync(store).flatMap((s) => {
        const dir = path.join(store, s, 'images');
        return existsSync(dir) ? readdirSync(dir).map((f) => path.join(dir, f)) : [];
      });
    mkdirSync(store, { recursive: true, mode: 0o700 });
    const before = copies();
    if (CLAUDE_CLI === 'current') expect(before.length).toBeGreaterThan(0);

    const eightDaysAgo = new Date(Date.now() - 8 * 24 * 60 * 60 * 1000);
    const plant = (file: string, old = true) => {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, 'x');
      if (old) utimesSync(file, eightDaysAgo, eightDaysAgo);
      return file;
    };
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    const gone = [...before, plant(path.join(store, a, 'images', '3.png'))];
    for (const file of before) utimesSync(file, eightDaysAgo, eightDaysAgo);
    const outside = path.join(cliTmp, 'outside');
    const kept = [
      plant(path.join(store, b, 'images', '4.jpeg'), false), // new
      plant(path.join(store, a, 'tasks', '5.output')), // a task's output, the CLI's own
      plant(path.join(store, a, 'images', 'notes.txt')), // not named as the CLI names a copy
      plant(path.join(own, '-another-cwd', a, 'images', '6.png')), // another cwd's
      plant(path.join(outside, '7.png')), // reached only through a symlink
    ];
    mkdirSync(path.join(store, c));
    symlinkSync(outside, path.join(store, c, 'images'));

    await ask('img-kept-2');
    expect(gone.filter((f) => existsSync(f))).toEqual([]);
    expect(kept.filter((f) => !existsSync(f))).toEqual([]);
    // The new turn's own copy is the one left (the sweep runs before the CLI makes it).
    if (CLAUDE_CLI === 'current')
      expect(copies().filter((f) => !kept.includes(f) && !f.startsWith(path.join(store, c)))).toHaveLength(1);
  });
});
