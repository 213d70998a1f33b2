import { mkdtempSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ClaudeTestEnv,
  claudeTestEnv,
  createGate,
  type FakeAnthropic,
  startFakeAnthropic,
  text,
} from './fakes/anthropic.js';
import { type FakeLlama, startFakeLlama } from './fakes/llama.js';
import { spawnService } from './helpers/process.js';
import { processesIn } from './helpers/procs.js';
import { CLAUDE_BIN } from './helpers/service.js';

/**
 * The service as its own process (as pm2 runs it, from the sources so the test
 * never runs a stale build): state survives a restart, SIGTERM lets running
 * turns finish or cuts them with a notice.
 */
let fake: FakeAnthropic;
let llama: FakeLlama;
let env: ClaudeTestEnv;

beforeAll(async () => {
  fake = await startFakeAnthropic();
  llama = await startFakeLlama();
  env = await claudeTestEnv(fake.url);
});
afterAll(async () => {
  await fake?.close();
  await llama?.close();
  await env?.cleanup();
});

const shuttingDown = (line: string) => line.includes('"msg":"shutting down"');

function setup(extra: Record<string, unknown> = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'bst-proc-'));
  const file = path.join(dir, 'brainstem.json');
  writeFileSync(
    file,
    JSON.stringify({
      dataDir: path.join(dir, 'data'),
      claude: { bin: CLAUDE_BIN, env: env.env, maxRetries: 0 },
      llama: { baseUrl: llama.baseUrl },
      ...extra,
    }),
  );
  const start = async () => {
    const p = await spawnService({ BRAINSTEM_CONFIG: file, HOME: dir });
    const token = (await readFile(path.join(dir, 'data', 'api-token'), 'utf8')).trim();
    return { p, token, client: new OpenAI({ baseURL: `${p.url}/v1`, apiKey: token, maxRetries: 0 }) };
  };
  return { dir, start };
}

describe('restart', { timeout: 180_000 }, () => {
  it('keeps the active mode, the Claude sessions and the usage ledger', async () => {
    const { dir, start } = setup({ server: { modeTag: false } });
    // The second answer depends on the first exchange reaching the API again: lost history, wrong answer.
    fake.script((r) => {
      if (!r.lastUserText.includes('again')) return text('ok, mango');
      const earlier = JSON.stringify(r.body?.messages);
      return text(
        earlier.includes('remember mango') && earlier.includes('ok, mango')
          ? 'still here, mango'
          : 'no memory',
      );
    });
    const key = { headers: { 'x-session-key': 'restart-conv' } };
    const history = [{ role: 'user' as const, content: 'remember mango' }];

    const one = await start();
    const a = await one.client.chat.completions.create({ model: 'assistant', messages: history }, key);
    expect(a.choices[0]?.message.content).toBe('ok, mango');
    const sw = await one.client.chat.completions.create({
      model: 'active',
      messages: [{ role: 'user', content: 'mode local' }],
    });
    expect(sw.choices[0]?.message.content).toMatch(/Switched to \*\*local\*\*/);
    expect(await one.p.stop('SIGTERM')).toBe(0);

    const two = await start();
    try {
      const health = (await (await fetch(`${two.p.url}/health`)).json()) as { activeMode: string };
      expect(health.activeMode).toBe('local');
      const b = await two.client.chat.completions.create(
        {
          model: 'assistant',
          messages: [
            ...history,
            { role: 'assistant', content: 'ok, mango' },
            { role: 'user', content: 'again?' },
          ],
        },
        key,
      );
      expect(b.choices[0]?.message.content).toBe('still here, mango');
      // A new process after the restart: the CLI resumed the session created before it (`--resume`).
      const started = JSON.parse(await two.p.waitForLog((l) => l.includes('"msg":"claude turn started"')));
      expect(started).toMatchObject({ resumed: true, warm: false, sessionKey: 'restart-conv' });
    } finally {
      expect(await two.p.stop('SIGTERM')).toBe(0);
    }
    const db = new Database(path.join(dir, 'data', 'brainstem.sqlite'), { readonly: true });
    const rows = db
      .prepare("SELECT mode, cost_usd FROM usage WHERE session_key = 'restart-conv' ORDER BY id")
      .all();
    db.close();
    expect(rows).toHaveLength(2);
  });
});

describe('graceful shutdown', { timeout: 180_000 }, () => {
  it('lets a running answer finish after SIGTERM, then exits 0', async () => {
    const { start } = setup();
    const { p, client } = await start();
    const g = createGate();
    fake.script(() => text(['part one', ' part two'], { gate: g.promise, gateAfter: 1 }));
    const stream = await client.chat.completions.create({
      model: 'assistant',
      messages: [{ role: 'user', content: 'long task' }],
      stream: true,
    });
    let got = '';
    let exit: Promise<number | null> | undefined;
    for await (const chunk of stream) {
      got += chunk.choices[0]?.delta.content ?? '';
      if (!exit && got.includes('part one')) {
        exit = p.stop('SIGTERM');
        // The rest comes only once the service is shutting down: the answer finishes during the grace.
        void p.waitForLog(shuttingDown).then(() => g.open());
      }
    }
    expect(got).toBe('**[assistant]** part one part two');
    expect(await exit).toBe(0);
  });

  it('cuts a turn that outlives the grace period, tells the client, leaves no child', async () => {
    const { dir, start } = setup({ server: { shutdownGraceMs: 300 } });
    const { p, client } = await start();
    const g = createGate();
    fake.script(() => text(['never', ' finished'], { gate: g.promise, gateAfter: 1 }));
    const stream = await client.chat.completions.create({
      model: 'assistant',
      messages: [{ role: 'user', content: 'endless task' }],
      stream: true,
    });
    let exit: Promise<number | null> | undefined;
    const consume = async () => {
      for await (const chunk of stream) {
        if (!exit && chunk.choices[0]?.delta.content?.includes('never')) exit = p.stop('SIGTERM');
      }
    };
    await expect(consume()).rejects.toThrow(/restarting/);
    expect(await exit).toBe(0);
    expect(processesIn(path.join(dir, 'data'))).toEqual([]);
    g.open();
  });

  it('exits at once on a second signal', async () => {
    const { start } = setup({ server: { shutdownGraceMs: 30_000 } });
    const { p, client } = await start();
    const g = createGate();
    fake.script(() => text(['stuck'], { gate: g.promise, gateAfter: 1 }));
    const stream = await client.chat.completions.create({
      model: 'assistant',
      messages: [{ role: 'user', content: 'stuck task' }],
      stream: true,
    });
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    p.child.kill('SIGTERM');
    // Two signals sent at once may reach the process as one: the second goes once the first was handled.
    await p.waitForLog(shuttingDown);
    const code = await p.stop('SIGTERM');
    expect(code).toBe(1);
    g.open();
  });
});
