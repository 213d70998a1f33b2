/**
 * The front's queue across outages: OpenClaw's channel (the second grammY
 * bot) stopped for a while and brainstem restarted meanwhile. Every update
 * reaches it exactly once, in order, once it is back; the notify chat is told
 * once that OpenClaw is not fetching, and once that it is again.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Update } from 'grammy/types';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkFront } from '../src/commands/doctor-checks.js';
import { runOpenclawConfig } from '../src/commands/openclaw-config.js';
import { type Downstream, startDownstream } from './helpers/downstream-bot.js';
import { type Harness, harnessEnv, OWNER, startHarness } from './telegram-harness.js';

const CHAT = 112;
const config = { telegram: { front: { enabled: true, stallNoticeMs: 1000 } } };
let first: Harness;
let second: Harness | undefined;
const sessions: Downstream[] = [];

beforeAll(async () => {
  first = await startHarness({ config });
});
afterAll(async () => {
  for (const s of sessions) await s.stop();
  await second?.close();
  await first?.close();
});

/** The owner's notices matching `pattern`, from the newest message `after` on (the id of one before them). */
const notices = (pattern: RegExp, after = 0) =>
  first.tg.botMessages(OWNER).filter((m) => m.messageId > after && pattern.test(m.text));
const texts = (updates: Update[]) => updates.map((u) => u.message?.text).filter((t) => t?.startsWith('m'));
/** How many updates wait in the front for OpenClaw (its getWebhookInfo, answered by the front). */
const pending = async (h: Harness) => {
  const res = await fetch(`${h.service.url}/telegram/bot${h.tg.token}/getWebhookInfo`);
  return ((await res.json()) as { result: { pending_update_count: number } }).result.pending_update_count;
};
/** The queue changes without a Telegram call to wait on: its state is read until it holds (bounded). */
async function until(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('the front across outages', () => {
  it('delivers every update once, in order, after OpenClaw and brainstem were both away', async () => {
    const u = first.tg.user(CHAT);
    const oc1 = await startDownstream(`${first.service.url}/telegram`, first.tg.token);
    sessions.push(oc1);
    u.says('m1');
    u.says('m2');
    await first.tg.waitFor(() => texts(oc1.received).length === 2);
    // Confirmed (its next poll's offset) before it stops, as a running channel does.
    await until(async () => (await pending(first)) === 0);
    await oc1.stop();
    // The notices counted below come after this one. A machine that stalled OpenClaw for the
    // second (stallNoticeMs) between a delivery and its confirmation had m1 and m2 rightly called
    // waiting and then fetched again, and the stall below taken for the one told before.
    await first.service.core.notifier.flush();
    const toldBefore = first.tg.botMessages(OWNER).at(-1)?.messageId ?? 0;

    u.says('m3');
    u.says('m4');
    u.says('m5');
    const stalled = await first.tg.waitFor(() => notices(/OpenClaw is not fetching messages/, toldBefore)[0]);
    expect(stalled.text).toMatch(
      /^⚙️ \[proxy\] 📭 OpenClaw is not fetching messages: 3 waiting since .* UTC\./,
    );
    // The command it names runs as the owner types it (the shell expanding ~ to the home folder).
    const home = first.dir;
    const args = /\(npm run openclaw-config -- ([^)]+)\)/.exec(stalled.text)?.[1]?.split(' ') ?? [];
    await mkdir(path.join(home, '.openclaw'));
    await writeFile(path.join(home, '.openclaw', 'openclaw.json'), '{}');
    const said: string[] = [];
    const code = await runOpenclawConfig(
      args.map((a) => a.replace(/^~(?=\/)/, home)),
      harnessEnv(home, path.join(home, 'brainstem.json'), first.tg),
      { write: (s: string) => said.push(s) },
      { write: (s: string) => said.push(s) },
    );
    expect([code, said.join('')]).toEqual([0, expect.stringMatching(/merged the brainstem provider/)]);
    const applied = JSON.parse(await readFile(path.join(home, '.openclaw', 'openclaw.json'), 'utf8'));
    expect(applied.channels.telegram.apiRoot).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/telegram$/);

    // brainstem's own status says so, and so does the doctor.
    first.tg.user(OWNER).says('/bstatus');
    const status = await first.tg.waitFor(() =>
      first.tg.botMessages(OWNER).find((m) => /Status/.test(m.text)),
    );
    expect(status.text).toMatch(
      /Route: OpenClaw through the Bot API front ❌ last polled .* ago; 3 waiting since/,
    );
    const doctor = checkFront(first.service.core.config);
    expect(doctor.ok).toBe(false);
    expect(doctor.detail).toMatch(/^3 update\(s\) waiting since .*; OpenClaw last polled it .* ago$/);

    // brainstem restarts; meanwhile more messages reach Telegram.
    await first.stopService();
    u.says('m6');
    u.says('m7');
    second = await startHarness({ config, tg: first.tg, llama: first.llama, dir: first.dir });
    const h = second;
    u.says('m8');
    await until(async () => (await pending(h)) === 6);

    const oc2 = await startDownstream(`${h.service.url}/telegram`, h.tg.token, { commands: false });
    sessions.push(oc2);
    await h.tg.waitFor(() => texts(oc2.received).length === 6);
    const all = [...oc1.received, ...oc2.received];
    expect(texts(all)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8']);
    const ids = all.map((x) => x.update_id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(ids.length);

    const resumed = await h.tg.waitFor(() => notices(/OpenClaw is fetching messages again/, toldBefore)[0]);
    expect(resumed.text).toMatch(
      /^⚙️ \[proxy\] 📬 OpenClaw is fetching messages again \(the first had waited /,
    );
    expect(notices(/OpenClaw is not fetching messages/, toldBefore)).toHaveLength(1);
    expect(checkFront(h.service.core.config)).toMatchObject({ ok: true });

    // Nothing more arrives twice: a later message is the only new one.
    u.says('m9');
    await h.tg.waitFor(() => texts(oc2.received).length === 7);
    expect(texts(oc2.received).at(-1)).toBe('m9');
    expect(notices(/OpenClaw is (not )?fetching/, toldBefore)).toHaveLength(2);

    // brainstem stops while OpenClaw's long poll waits on a connection its channel keeps open
    // (undici's pool; one connection here). OpenClaw's next call must not come back on it as a
    // 503 of no Telegram shape, which OpenClaw would drop: the connection closes with the poll's
    // answer, and the call fails to connect, which OpenClaw retries.
    await oc2.stop();
    sessions.pop();
    const pool = new Agent({ connections: 1 });
    const api = `${h.service.url}/telegram/bot${h.tg.token}`;
    const asked = () =>
      h.logs.filter((l) => l.msg === 'OpenClaw changed the update types it polls for').length;
    const before = asked();
    const offset = (oc2.received.at(-1)?.update_id ?? 0) + 1;
    const poll = request(`${api}/getUpdates?offset=${offset}&timeout=30&allowed_updates=["poll"]`, {
      dispatcher: pool,
    });
    // The front has read the poll (it notes the new types as it comes in): it is waiting.
    await until(async () => asked() > before);
    const stopping = h.stopService();
    expect(await (await poll).body.json()).toEqual({ ok: true, result: [] });
    const next = await request(`${api}/sendMessage?chat_id=${CHAT}&text=late`, { dispatcher: pool }).then(
      (r) => r.statusCode,
      (e: { code?: string }) => e.code,
    );
    expect(next).toBe('ECONNREFUSED');
    await stopping;
    await pool.close();
  });
});
