/**
 * brainstem's own tool runs with the Bot API front on: a run queued behind
 * another says how to stop the running one, and the command it names must be
 * brainstem's. With the front, `/stop` is OpenClaw's (its own runs); brainstem
 * answers its `/stop` as `/bstop`.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Downstream, startDownstream } from './helpers/downstream-bot.js';
import { type Harness, startHarness } from './telegram-harness.js';

const USER = 113;
let h: Harness;
let oc: Downstream;
let release: string;

beforeAll(async () => {
  // A test run that ends only once the test writes `release` (never on a timer), so the next run queues behind it.
  release = path.join(tmpdir(), `front-tool-queue-${process.pid}-${Date.now()}`);
  h = await startHarness({
    parts: { tools: true, bot: true },
    config: {
      telegram: { front: { enabled: true } },
      tools: {
        tests: {
          argv: [
            process.execPath,
            '-e',
            `const fs=require('node:fs');console.log('tests started');const t=setInterval(()=>{if(fs.existsSync(${JSON.stringify(release)})){clearInterval(t);console.log('tests done')}},20)`,
          ],
          cwd: tmpdir(),
          readOnly: true,
        },
        lint: { argv: [process.execPath, '-e', 'console.log("lint clean")'], cwd: tmpdir(), readOnly: true },
      },
    },
  });
  oc = await startDownstream(`${h.service.url}/telegram`, h.tg.token);
});
afterAll(async () => {
  if (release && !existsSync(release)) await writeFile(release, '').catch(() => undefined);
  await oc?.stop();
  await h?.close();
});

describe('a tool run queued behind another, with the front on', () => {
  it('names /bstop, brainstem’s stop, which stops the running one: /stop would go to OpenClaw', async () => {
    const u = h.tg.user(USER);
    u.says('tests');
    await h.tg.waitFor(() => h.tg.botMessages(USER).find((m) => /tests started/.test(m.text)), {
      timeoutMs: 15_000,
    });
    u.says('lint');
    const queued = await h.tg.waitFor(() => h.tg.botMessages(USER).find((m) => /Queued/.test(m.text)));
    expect(queued.text).toMatch(/\(\/bstop interrupts it\)/);
    expect(queued.text).not.toMatch(/\/stop\b/);

    // /stop is OpenClaw's: it goes there, and the tests go on.
    u.says('/stop');
    await h.tg.waitFor(() =>
      oc.received.find((x) => x.message?.from?.id === USER && x.message.text === '/stop'),
    );
    // What it names works: /bstop stops the tests, and the lint runs.
    u.says('/bstop');
    await h.tg.waitFor(() => h.tg.botMessages(USER).find((m) => /lint clean/.test(m.text)), {
      timeoutMs: 15_000,
    });
    expect(h.tg.botMessages(USER).some((m) => /tests done/.test(m.text))).toBe(false);
  });
});
