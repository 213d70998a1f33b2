import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGate, text } from './fakes/anthropic.js';
import { claudeOnFake } from './helpers/claude-fake.js';
import { processesIn } from './helpers/procs.js';
import { CLAUDE_BIN } from './helpers/service.js';
import { type Harness, startHarness } from './telegram-harness.js';

/** /stop against the real `claude` CLI: the answer is cut and the child process is gone. */
const claude = claudeOnFake();
let h: Harness;
const gate = createGate();

beforeAll(async () => {
  h = await startHarness({
    env: { CLAUDE_BIN },
    config: { defaultMode: 'assistant', claude: { env: claude.cli.env, maxRetries: 0 } },
  });
});
afterAll(async () => {
  gate.open();
  await h.close();
});

/** Running (not exited, not a zombie). */
function alive(pid: number): boolean {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
    return state !== undefined && state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

describe('/stop with Claude Code', () => {
  it('kills the running claude child and says so, while the fake API still holds the stream', async () => {
    claude.fake.script(() =>
      text(['Working on it', ' and more', ' never seen'], { gate: gate.promise, gateAfter: 1 }),
    );
    const u = h.tg.user(112);
    u.says('do something long');
    const answer = await h.tg.waitFor(
      () => h.tg.botMessages(112).find((m) => m.text.startsWith('Working on it')),
      {
        timeoutMs: 20_000,
      },
    );
    const children = processesIn(h.dir);
    expect(children.length).toBeGreaterThan(0);

    u.says('/stop');
    await h.tg.waitFor(() =>
      h.tg.botMessages(112).find((m) => /Stopped the answer in progress/.test(m.text)),
    );
    await h.tg.waitFor(() => processesIn(h.dir).length === 0);
    // Gone, or dead and waiting to be reaped: nothing of the turn runs any more.
    await h.tg.waitFor(() => children.every((pid) => !alive(pid)));
    await h.tg.waitFor(() => answer.text === 'Working on it\n\n⏹ stopped', { timeoutMs: 30_000 });
    expect(h.service.core.ledger.report(0).totals.turns).toBe(1);
  });
});
