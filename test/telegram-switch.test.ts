import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeLlama, startFakeLlama } from './fakes/llama.js';
import { type Harness, nextLog, OWNER, startHarness } from './telegram-harness.js';

/**
 * The README's promises about switching, through the Bot API emulator: a
 * failed switch keeps the previous mode and says why; a message that arrives
 * during a switch waits for it and is answered by the new mode.
 */
let h: Harness;
/** Node's warnings of listeners piling up on one target (a leak), from anywhere in this file. */
const leaks: Error[] = [];
const onWarning = (w: Error) => {
  if (w.name === 'MaxListenersExceededWarning') leaks.push(w);
};
process.on('warning', onWarning);
/** The upstream of mode `big`: loading until a test says it is ready. */
let big: FakeLlama;
/** Secrets a model's start command takes as arguments, and prints as it fails. */
const LLAMA_KEY = 'hunter2-llama-secret';
const HF_TOKEN = 'hf_abcdefghijklmnopqrstuvwxyz0123';

/** A loopback port nothing listens on: one the system just gave out and took back. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The text of the toast a button press got. */
const answer = (callbackQueryId: string) =>
  h.tg.waitFor(() => h.tg.callbackAnswers.find((a) => a.callbackQueryId === callbackQueryId)?.text, {
    timeoutMs: 60_000,
  });

/** The modes the switcher ends on from now, in order, until `stop`. */
function recordSwitches() {
  const to: string[] = [];
  const onSwitched = (o: { to: string }) => to.push(o.to);
  h.service.core.switcher.on('switched', onSwitched);
  return { to, stop: () => h.service.core.switcher.off('switched', onSwitched) };
}

beforeAll(async () => {
  big = await startFakeLlama({ loading: true });
  h = await startHarness({
    config: {
      modes: {
        big: { kind: 'llama', baseUrl: big.baseUrl, description: 'Big model' },
        ready: { kind: 'llama', baseUrl: big.baseUrl, description: 'Big model, another mode' },
        broken: { kind: 'llama', llamaModel: 'bad', description: 'Model whose unit is missing' },
        keyed: { kind: 'llama', llamaModel: 'keyed', description: 'Model started with its keys' },
        gone: {
          kind: 'llama',
          baseUrl: `http://127.0.0.1:${await closedPort()}/v1`,
          description: 'No server',
        },
      },
      llama: {
        // Long enough for any load: only the test decides when `big` is ready.
        readyTimeoutMs: 120_000,
        // Short, as the test waits it out: a switch to `gone` must end with it, far before readyTimeoutMs.
        downGraceMs: 1_000,
        models: {
          bad: {
            start: [
              [process.execPath, '-e', 'console.error("Unit llama-bad.service not found."); process.exit(5)'],
            ],
          },
          keyed: {
            start: [
              [
                process.execPath,
                '-e',
                'console.error("bad args:", process.argv.slice(1).join(" ")); process.exit(1)',
                '--',
                '--api-key',
                LLAMA_KEY,
                '--hf-token',
                HF_TOKEN,
              ],
            ],
          },
        },
      },
    },
  });
});
afterAll(async () => {
  process.off('warning', onWarning);
  await h?.close();
  await big?.close();
});

const reply = (chatId: number, pattern: RegExp) =>
  h.tg.waitFor(() => h.tg.botMessages(chatId).find((m) => pattern.test(m.text)), { timeoutMs: 60_000 });
const chatRequests = (llama: FakeLlama) => llama.requests.filter((r) => r.path === '/v1/chat/completions');
const lastUserContent = (llama: FakeLlama) =>
  (
    chatRequests(llama).at(-1)?.body as { messages: { role: string; content: string }[] } | undefined
  )?.messages.at(-1)?.content;

describe('switching from Telegram', { timeout: 90_000 }, () => {
  it('a failed switch keeps the previous mode and says why', async () => {
    const u = h.tg.user(112);
    u.says('/mode broken');
    const failed = await reply(112, /❌ Switch to broken failed/);
    expect(failed.text).toMatch(/exit code 5/);
    expect(failed.text).toContain('Unit llama-bad.service not found.');
    expect(failed.text).toMatch(/Still on local\.$/);
    expect(h.service.core.switcher.active().id).toBe('local');
    const notice = await reply(OWNER, /Switch to broken failed/);
    expect(notice.text).toMatch(/Still on local\.$/);

    // The previous mode goes on answering.
    u.says('are you there?');
    await reply(112, /^echo: are you there\?$/);
    u.says('/status');
    expect((await reply(112, /^⚙️ \[proxy\] Status\n/)).text).toMatch(/Active mode: local/);
  });

  it('a reason that ends its own sentence is not followed by a second full stop', async () => {
    // The default Claude modes' CLI is missing here: its readiness says so in a sentence of its own.
    const u = h.tg.user(112);
    u.says('/mode assistant');
    const failed = await reply(112, /❌ Switch to assistant failed/);
    expect(failed.text).toMatch(/set CLAUDE_BIN to its path\)\. Still on local\.$/);
    const notice = await reply(OWNER, /Switch to assistant failed/);
    expect(notice.text).toMatch(/set CLAUDE_BIN to its path\)\. Still on local\.$/);
  });

  it('a switch asked in words on the OpenAI endpoint that fails says so and which mode still answers', async () => {
    const token = (await readFile(path.join(h.service.core.config.dataDir, 'api-token'), 'utf8')).trim();
    const r = await fetch(`${h.service.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'active', messages: [{ role: 'user', content: 'switch to broken' }] }),
    });
    const body = (await r.json()) as { choices: { message: { content: string } }[] };
    const said = body.choices[0]?.message.content;
    expect(said).toMatch(/^⚙️ \[proxy\] ❌ Switch to \*\*broken\*\* failed: .*exit code 5/s);
    expect(said).toMatch(/Still on \*\*local\*\*\.$/);
  });

  it('a failed start command with secret flags is shown, noticed, stored and logged with them redacted', async () => {
    const u = h.tg.user(118);
    u.says('/mode keyed');
    const failed = await reply(118, /❌ Switch to keyed failed/);
    const notice = await reply(OWNER, /Switch to keyed failed/);
    // The command is still named, and what it printed still shown, so the owner knows which one failed.
    expect(failed.text).toContain(
      '"--api-key","[redacted]","--hf-token","[redacted]"] failed with exit code 1',
    );
    expect(failed.text).toContain('bad args: --api-key [redacted] --hf-token [redacted]');
    const db = new Database(path.join(h.service.core.config.dataDir, 'brainstem.sqlite'), { readonly: true });
    const stored = JSON.stringify(db.prepare('SELECT * FROM notices').all());
    db.close();
    expect(stored).toContain('Switch to <b>keyed</b> failed');
    // Both lines about the command are there, naming it redacted.
    const keyed = (msg: string) =>
      h.logs.find((l) => l.msg === msg && JSON.stringify(l.argv).includes('"--hf-token","[redacted]"'));
    expect(keyed('llama swap command ran')).toBeDefined();
    expect(keyed('llama swap command failed')).toBeDefined();
    for (const [where, text] of Object.entries({
      reply: failed.text,
      notice: notice.text,
      stored,
      logs: JSON.stringify(h.logs),
    })) {
      expect(text, where).not.toContain(LLAMA_KEY);
      expect(text, where).not.toContain(HF_TOKEN);
    }
  });

  it('a switch that starts nothing fails within seconds when nothing answers, not after readyTimeoutMs', async () => {
    const u = h.tg.user(114);
    u.says('/mode gone');
    const failed = await reply(114, /❌ Switch to gone failed/);
    expect(failed.text).toMatch(
      /nothing answered for 1\.0 s and nothing is starting it: cannot reach the local model/,
    );
    expect(failed.text).toContain('Is llama-server (or Ollama) running?');
    expect(failed.text).toMatch(/Still on local\.$/);
    expect(h.service.core.switcher.active().id).toBe('local');
  });

  it('a switch whose mode cannot be saved (the database is locked) fails, says why and keeps the mode', async () => {
    const u = h.tg.user(115);
    u.says('/mode ready');
    // Its upstream is loading: the switch waits for it.
    await expect.poll(() => h.service.core.switcher.isSwitching(), { timeout: 30_000 }).toBe(true);
    // Meanwhile another process takes the state database's write lock (a sqlite3 shell, a backup).
    const other = new Database(path.join(h.service.core.config.dataDir, 'brainstem.sqlite'), { timeout: 0 });
    other.exec('BEGIN IMMEDIATE');
    try {
      big.setLoading(false);
      await expect.poll(() => h.service.core.switcher.isSwitching(), { timeout: 30_000 }).toBe(false);
    } finally {
      other.exec('ROLLBACK');
      other.close();
      big.setLoading(true);
    }
    const failed = await reply(115, /❌ Switch to ready failed/);
    expect(failed.text).toMatch(/database is locked/);
    expect(failed.text).toMatch(/Still on local\.$/);
    expect(h.service.core.switcher.active().id).toBe('local');
    expect(h.service.core.kv.get('active_mode') ?? 'local').toBe('local');
  });

  it('a switch back to the active mode asked during a switch is acknowledged at once, and the last asked wins', async () => {
    const u = h.tg.user(119);
    u.says('/mode big');
    await reply(119, /Switching to big…/);
    // The owner changes their mind while big loads: told at once, not after the load.
    u.says('/mode local');
    await reply(119, /Switching to local…/);
    expect(h.service.core.switcher.active().id).toBe('local');
    big.setLoading(false);
    await reply(119, /✅ Mode big is ready \(from local/);
    await reply(119, /✅ Mode local is ready \(from big/);
    expect(h.service.core.switcher.active().id).toBe('local');
    big.setLoading(true);
  });

  it('a mode name that names none is answered at once during a switch, with the modes there are', async () => {
    const u = h.tg.user(114);
    u.says('/mode big');
    await reply(114, /Switching to big…/);
    u.says('/mode nosuch');
    const unknown = await reply(114, /❌ Switch to nosuch failed/);
    expect(unknown.text).toMatch(/unknown mode "nosuch"\. Modes: .*\bbig\b.*\. Still on local\.$/);
    expect(h.service.core.switcher.underWay()).toBe('big');
    big.setLoading(false);
    await reply(114, /✅ Mode big is ready \(from local/);
    big.setLoading(true);
    u.says('/mode local');
    await reply(114, /✅ Mode local is ready \(from big/);
  });

  it('a mode button pressed twice keeps the outcome of its switch in its message, and another one pressed meanwhile switches after it', async () => {
    const u = h.tg.user(118);
    u.says('/mode');
    const menu = await reply(118, /Modes/);
    const switched = recordSwitches();
    expect(await answer(u.presses(menu.messageId, 'bs:mode:big'))).toBe('→ big');
    // Pressed again, and other buttons, before the edit took the buttons away: each answer is
    // given while the first press's switch runs (big loads until the test says).
    expect(await answer(u.presses(menu.messageId, 'bs:mode:big'))).toBe(
      'The switch to big is under way: this message says how it ends.',
    );
    expect(await answer(u.presses(menu.messageId, 'bs:mode:local'))).toBe(
      '→ local, once the switch to big is over',
    );
    // local tapped twice: switched to once. Then big again: the last asked wins.
    expect(await answer(u.presses(menu.messageId, 'bs:mode:local'))).toBe(
      '→ local, once the switch to big is over',
    );
    expect(await answer(u.presses(menu.messageId, 'bs:mode:big'))).toBe(
      '→ big, once the switch to local is over',
    );
    await reply(118, /Switching to local…/);
    await h.tg.waitFor(() => /Switching to big…/.test(menu.text), { timeoutMs: 60_000 });
    big.setLoading(false);
    await h.tg.waitFor(() => /✅ Mode big is ready \(from local/.test(menu.text), { timeoutMs: 60_000 });
    // Each asked after it is shown in a message of its own; the menu keeps its switch's outcome.
    await reply(118, /✅ Mode local is ready \(from big/);
    const last = await h.tg.waitFor(
      () =>
        h.tg
          .botMessages(118)
          .find((m) => m.messageId !== menu.messageId && /✅ Mode big is ready \(from local/.test(m.text)),
      { timeoutMs: 60_000 },
    );
    expect(last.messageId).toBeGreaterThan(menu.messageId);
    expect(h.service.core.switcher.active().id).toBe('big');
    big.setLoading(true);
    // Back to local for the tests after; queued behind every switch the presses made.
    u.says('/mode local');
    await h.tg.waitFor(() => switched.to.length === 4 || undefined, { timeoutMs: 60_000 });
    switched.stop();
    expect(switched.to).toEqual(['big', 'local', 'big', 'local']);
    expect(menu.text).toMatch(/✅ Mode big is ready \(from local/);
  });

  it('a removed mode’s button pressed while its menu shows a switch says the mode is gone, in the user’s language, and leaves the switch be', async () => {
    const u = h.tg.user(117, { languageCode: 'fr' });
    u.says('/mode');
    const menu = await reply(117, /Modes/);
    const switched = recordSwitches();
    expect(await answer(u.presses(menu.messageId, 'bs:mode:big'))).toBe('→ big');
    // A mode that left brainstem.json while the menu was on screen (its button still in its row).
    expect(await answer(u.presses(menu.messageId, 'bs:mode:retired'))).toBe('Il n’y a plus de mode retired.');
    // The switch the menu shows is still the one a press of its button is told about.
    expect(await answer(u.presses(menu.messageId, 'bs:mode:big'))).toBe(
      'La bascule vers big est en cours : ce message dira comment elle se termine.',
    );
    expect(h.service.core.switcher.underWay()).toBe('big');
    big.setLoading(false);
    await h.tg.waitFor(() => /✅ Mode big prêt \(depuis local/.test(menu.text), { timeoutMs: 60_000 });
    big.setLoading(true);
    u.says('/mode local');
    await reply(117, /✅ Mode local prêt \(depuis big/);
    switched.stop();
    expect(switched.to).toEqual(['big', 'local']);
    expect(h.tg.botMessages(117).filter((m) => /retired/.test(m.text))).toEqual([]);
  });

  it('a switch shown leaves nothing behind once over: the stop’s signal does not gather a listener per switch', async () => {
    const u = h.tg.user(116);
    const told = () => h.tg.botMessages(116).filter((m) => /Already in mode/.test(m.text)).length;
    const before = told();
    // More than Node's 10 listeners a signal may have before it warns of a leak.
    for (let i = 1; i <= 11; i++) {
      u.says('/mode local');
      await h.tg.waitFor(() => told() === before + i || undefined, { timeoutMs: 60_000 });
    }
    expect(leaks.filter((w) => w.stack?.includes('switch-progress'))).toEqual([]);
  });

  it('a message sent during a switch waits for it, then the new mode answers it', async () => {
    const u = h.tg.user(113);
    u.says('/mode big');
    // Once the user sees the switch under way, it is: big's readiness says "loading" until the test says.
    await reply(113, /Switching to big…/);
    expect(h.service.core.switcher.isSwitching()).toBe(true);

    const typing = h.tg.callsOf('sendChatAction', 113).length;
    u.says('during the switch');
    // The message is taken (typing shows) but no brain has it: it waits for the switch, and says so.
    await h.tg.waitFor(() => h.tg.callsOf('sendChatAction', 113).length > typing, { timeoutMs: 60_000 });
    await reply(113, /^⏳ waiting for the mode switch to end…$/);
    expect(lastUserContent(h.llama)).not.toBe('during the switch');
    expect(chatRequests(big)).toEqual([]);
    expect(h.service.core.switcher.active().id).toBe('local');
    // /status says where the switch goes.
    u.says('/status');
    expect((await reply(113, /^⚙️ \[proxy\] Status\n/)).text).toMatch(
      /Active mode: local \(switching to big…\)/,
    );

    big.setLoading(false);
    await reply(113, /✅ Mode big is ready \(from local/);
    await reply(113, /^echo: during the switch$/);
    expect(lastUserContent(big)).toBe('during the switch');
    expect(chatRequests(h.llama).some((r) => JSON.stringify(r.body).includes('during the switch'))).toBe(
      false,
    );
    expect(h.service.core.switcher.active().id).toBe('big');
  });
});

describe('a restart during a switch', { timeout: 90_000 }, () => {
  it('tells the message waiting for the switch that brainstem is restarting, instead of leaving it unanswered', async () => {
    const slow = await startFakeLlama({ loading: true });
    const r = await startHarness({
      config: { modes: { slow: { kind: 'llama', baseUrl: slow.baseUrl, description: 'Loads forever' } } },
    });
    try {
      const u = r.tg.user(116);
      u.says('/mode slow');
      await r.tg.waitFor(() => r.tg.botMessages(116).find((m) => /Switching to slow…/.test(m.text)), {
        timeoutMs: 30_000,
      });
      const typing = r.tg.callsOf('sendChatAction', 116).length;
      u.says('waiting for the switch');
      // Taken (typing shows), waiting for the switch: then pm2 restarts brainstem.
      await r.tg.waitFor(() => r.tg.callsOf('sendChatAction', 116).length > typing, { timeoutMs: 30_000 });
      await r.stopService();
      // The stop cuts the message's wait, and ends the switch's wait at once, leaving the switch to the
      // next start: told that its answer was cut, or, when the switch ended first, as when the model
      // comes up while brainstem stops (below).
      expect(r.tg.botMessages(116).map((m) => m.text)).toContainEqual(
        expect.stringMatching(
          /brainstem is (restarting; this answer was cut\. Send it again in a moment|shutting down; try again shortly)\.$/,
        ),
      );
    } finally {
      await r.close();
      await slow.close();
    }
  });

  it('does not answer a message waiting for a switch with the mode the user leaves, when the model comes up as brainstem stops (a French reader)', async () => {
    const slow = await startFakeLlama({ loading: true });
    const r = await startHarness({
      config: { modes: { slow: { kind: 'llama', baseUrl: slow.baseUrl, description: 'Loads until told' } } },
    });
    try {
      const u = r.tg.user(119, { languageCode: 'fr' });
      u.says('/mode slow');
      await r.tg.waitFor(() => r.tg.botMessages(119).find((m) => /Bascule vers slow…/.test(m.text)), {
        timeoutMs: 30_000,
      });
      const typing = r.tg.callsOf('sendChatAction', 119).length;
      u.says('waiting for the switch');
      await r.tg.waitFor(() => r.tg.callsOf('sendChatAction', 119).length > typing, { timeoutMs: 30_000 });
      // The stop's first step (no switch ends now), then slow comes up before the turns are stopped:
      // the switch is left to the next start, and local, the mode the user leaves, must not answer
      // (on a shared LLAMA_BASE_URL, the other model would answer in its name).
      const left = nextLog(r, (l) => l.msg === 'brainstem is stopping: the switch is left to the next start');
      r.service.core.switcher.stop();
      slow.setLoading(false);
      await left();
      // The answer, in place of the line "waiting for the mode switch to end…".
      const answered = (m: { text: string }) => /echo:|s’arrête/.test(m.text);
      const told = await r.tg.waitFor(() => r.tg.botMessages(119).find(answered), { timeoutMs: 30_000 });
      expect(told.text).toMatch(/brainstem s’arrête ; réessayez dans un moment\.$/);
      // The progress line says what the next start does, as when the stop comes first: not a failure.
      const line = await r.tg.waitFor(() =>
        r.tg.botMessages(119).find((m) => /slow/.test(m.text) && !/…/.test(m.text)),
      );
      expect(line.text).toMatch(
        /⏳ brainstem redémarre au milieu de la bascule vers slow\. Il la termine à son retour/,
      );
    } finally {
      await r.close();
      await slow.close();
    }
  });

  it('answers a switch asked in words on the OpenAI endpoint that the stop leaves to the next start as not over, not as failed', async () => {
    const slow = await startFakeLlama({ loading: true });
    const r = await startHarness({
      config: { modes: { slow: { kind: 'llama', baseUrl: slow.baseUrl, description: 'Loads forever' } } },
    });
    try {
      const token = (await readFile(path.join(r.service.core.config.dataDir, 'api-token'), 'utf8')).trim();
      const asked = fetch(`${r.service.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'active', messages: [{ role: 'user', content: 'switch to slow' }] }),
      });
      // Under way (its record kept for the next start), waiting for slow: then pm2 restarts brainstem.
      await expect.poll(() => r.service.core.switcher.underWay(), { timeout: 30_000 }).toBe('slow');
      await r.stopService();
      const body = (await (await asked).json()) as { choices: { message: { content: string } }[] };
      expect(body.choices[0]?.message.content).toBe(
        '⚙️ [proxy] ⏳ Switch to **slow** not over: brainstem is restarting: it makes the switch once it is back. Still on **local** until then.',
      );
    } finally {
      await r.close();
      await slow.close();
    }
  });
});

describe('asking for the active mode', { timeout: 90_000 }, () => {
  it('shows the progress line while its model, gone down, is started again, and none when it is up', async () => {
    // Up at first; its start command does nothing the test can see: only the test decides when it is loaded.
    const qwen = await startFakeLlama();
    const r = await startHarness({
      // Its probes keep their own time limit (10 s): the model goes down here by answering 503 at once,
      // and at 0.5 s a machine slow to answer /health for a second (one probe that two checks join)
      // had a model that was up called down and back, a notice more than the test counts.
      parts: { bot: true, brainMonitor: { intervalMs: 100, failuresBeforeDown: 2 } },
      config: {
        defaultMode: 'qwen',
        modes: { qwen: { kind: 'llama', llamaModel: 'qwen', baseUrl: qwen.baseUrl, description: 'Qwen' } },
        llama: { readyTimeoutMs: 120_000, models: { qwen: { start: [[process.execPath, '-e', '0']] } } },
      },
    });
    const said = (chatId: number, pattern: RegExp, after = 0) =>
      r.tg.waitFor(
        () =>
          r.tg
            .botMessages(chatId)
            .slice(after)
            .find((m) => pattern.test(m.text)),
        { timeoutMs: 60_000 },
      );
    const progressLines = () =>
      r.tg.callsOf('sendMessage', 117).filter((c) => String(c.params.text).includes('Switching to'));
    try {
      expect(r.service.core.switcher.active().id).toBe('qwen');
      // A reboot or an OOM kill: the model is gone behind brainstem's back, and the owner is told.
      qwen.setLoading(true);
      await said(OWNER, /🔴 Mode qwen does not answer since /);
      const u = r.tg.user(117);
      u.says('/mode qwen');
      await said(117, /Switching to qwen… \(waiting until it answers\)/);
      expect(r.service.core.switcher.isSwitching()).toBe(true);
      qwen.setLoading(false);
      await said(117, /✅ Mode qwen is ready: its model was started again in /);
      await said(OWNER, /^⚙️ \[proxy\] Mode qwen is awake \(Qwen\)\. Its model was started again in /);
      expect(r.tg.botMessages(117).map((m) => m.text)).not.toContainEqual(
        expect.stringMatching(/Switching to/),
      );
      // The wake notice told the owner the mode is back: the brain monitor does not say it a second time.
      await nextLog(r, (l) => l.msg === 'brain monitor checked')(2);
      await r.service.core.notifier.flush();
      expect(r.tg.botMessages(OWNER).map((m) => m.text)).not.toContainEqual(
        expect.stringMatching(/answers again/),
      );

      // Up: nothing to do, so no progress line (one would be sent before the answer that follows it).
      const before = r.tg.botMessages(117).length;
      const lines = progressLines().length;
      u.says('/mode qwen');
      await said(117, /Already in mode qwen\./, before);
      expect(progressLines()).toHaveLength(lines);
    } finally {
      await r.close();
      await qwen.close();
    }
  });
});
