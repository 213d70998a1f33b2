/**
 * The Bot API front, measured with brainstem as its own process between the
 * Bot API emulator and a downstream poller (OpenClaw's place): the latency it
 * adds to a passed-through call, the hand-off of an update from Telegram to
 * the downstream poller, and a backlog of 10,000 updates (memory, drain time).
 * A bare forwarder in a process of its own gives the floor of the extra hop in
 * the same run: on a loaded machine, waking another process costs more than
 * anything brainstem does.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Agent, request } from 'undici';
import { startFakeTelegram } from '../test/fakes/telegram.js';
import { spawnService } from '../test/helpers/process.js';
import type { BenchSetup } from './fixture.js';
import { median, now, round, rssMb } from './stats.js';

const BACKLOG = 10_000;

/** The local mode only (never called), the front on. */
export const FRONT_SETUP: BenchSetup = {
  config: {
    defaultMode: 'local',
    modes: { local: { kind: 'llama' } },
    telegram: { front: { enabled: true } },
  },
  concurrentTurns: 0,
  warmConversations: 0,
};

export async function frontBench(runs: number) {
  const tg = await startFakeTelegram();
  const dir = mkdtempSync(path.join(tmpdir(), 'bst-bench-front-'));
  const configFile = path.join(dir, 'brainstem.json');
  writeFileSync(configFile, JSON.stringify({ dataDir: path.join(dir, 'data'), ...FRONT_SETUP.config }));
  const svc = await spawnService({
    BRAINSTEM_CONFIG: configFile,
    HOME: dir,
    TELEGRAM_BOT_TOKEN: tg.token,
    TELEGRAM_API_ROOT: tg.apiRoot,
    TELEGRAM_ALLOWED_USERS: '111',
    CLAUDE_BIN: path.join(dir, 'no-claude'),
  });
  const bare = spawn(
    process.execPath,
    ['--import', 'tsx', path.resolve('bench/bare-forwarder.ts'), tg.apiRoot],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const bareUrl = await new Promise<string>((resolve) =>
    createInterface({ input: bare.stdout }).once('line', (line) => resolve(JSON.parse(line).url)),
  );
  const agent = new Agent({ keepAliveTimeout: 60_000 });
  const front = `${svc.url}/telegram/bot${tg.token}`;
  const forwarded = `${bareUrl}/bot${tg.token}`;
  const direct = `${tg.apiRoot}/bot${tg.token}`;
  const call = async (root: string, method: string, params: object, signal?: AbortSignal) => {
    const res = await request(`${root}/${method}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(params),
      dispatcher: agent,
      signal,
    });
    return (await res.body.json()) as { ok: boolean; result: unknown };
  };
  try {
    await tg.waitFor(() => tg.polling.maxConcurrent > 0, { timeoutMs: 20_000 });

    // 1. sendMessage through the front vs straight to the emulator (and through the bare forwarder), interleaved.
    const viaFront: number[] = [];
    const viaBare: number[] = [];
    const straight: number[] = [];
    const timed = async (root: string, i: number) => {
      const t0 = now();
      await call(root, 'sendMessage', { chat_id: 4242, text: `bench ${i}` });
      return now() - t0;
    };
    for (let i = 0; i < runs * 20 + 20; i++) {
      const d = await timed(direct, i);
      const b = await timed(forwarded, i);
      const f = await timed(front, i);
      if (i < 20) continue; // warm-up
      straight.push(d);
      viaBare.push(b);
      viaFront.push(f);
    }

    // 2. Hand-off: the emulator answers brainstem's poll → the downstream poll holds the update.
    const got = new Map<number, number>();
    const waiters = new Map<number, () => void>();
    let offset = 0;
    let polling = true;
    const stopPolling = new AbortController();
    const loop = (async () => {
      while (polling) {
        const r = await call(front, 'getUpdates', { offset, timeout: 30 }, stopPolling.signal).catch(
          () => undefined,
        );
        const at = now();
        for (const u of (r?.result as { update_id: number }[] | undefined) ?? []) {
          got.set(u.update_id, at);
          offset = u.update_id + 1;
          waiters.get(u.update_id)?.();
        }
      }
    })();
    const user = tg.user(111);
    const handOff: number[] = [];
    for (let i = 0; i < runs * 4 + 5; i++) {
      // Steady state: both long polls (brainstem's at Telegram, the downstream one at the front) are waiting.
      await sleep(20);
      user.says(`hand-off ${i}`);
      const id = Number(tg.updateLog.at(-1)?.update_id);
      if (!got.has(id)) await new Promise<void>((resolve) => waiters.set(id, resolve));
      if (i < 5) continue;
      handOff.push((got.get(id) ?? 0) - (tg.releasedAt.get(id) ?? 0));
    }
    polling = false;
    stopPolling.abort();
    await loop;

    // 3. A backlog: 10,000 updates while nobody polls the front, then drained.
    const pid = svc.child.pid ?? 0;
    const rssBefore = rssMb(pid);
    const ingestStart = now();
    for (let i = 0; i < BACKLOG; i++) user.says(`backlog ${i}`);
    const pending = async () =>
      ((await call(front, 'getWebhookInfo', {})).result as { pending_update_count: number })
        .pending_update_count;
    while ((await pending()) < BACKLOG) await sleep(20);
    const ingestMs = now() - ingestStart;
    const rssQueued = rssMb(pid);
    const drainStart = now();
    let drained = 0;
    while (drained < BACKLOG) {
      const r = await call(front, 'getUpdates', { offset, limit: 100, timeout: 0 });
      const batch = r.result as { update_id: number }[];
      drained += batch.length;
      const last = batch.at(-1);
      if (last) offset = last.update_id + 1;
    }
    const drainMs = now() - drainStart;
    await call(front, 'getUpdates', { offset, timeout: 0 });
    const rssDrained = rssMb(pid);

    return {
      passthroughSendMessage: {
        directMs: round(median(straight), 3),
        frontMs: round(median(viaFront), 3),
        addedMs: round(median(viaFront) - median(straight), 3),
        bareForwarderAddedMs: round(median(viaBare) - median(straight), 3),
        runs: straight.length,
        target: { addedMs: '<= 1' },
      },
      handOff: {
        medianMs: round(median(handOff), 3),
        maxMs: round(Math.max(...handOff), 3),
        runs: handOff.length,
        target: '<= 5',
      },
      backlog: {
        updates: BACKLOG,
        ingestMs: round(ingestMs, 0),
        drainMs: round(drainMs, 0),
        rssBeforeMb: round(rssBefore, 1),
        rssQueuedMb: round(rssQueued, 1),
        rssDrainedMb: round(rssDrained, 1),
        target: { drainMs: '<= 2000', rssQueuedMinusBeforeMb: '<= 10' },
      },
    };
  } finally {
    bare.kill();
    await svc.stop();
    await agent.close();
    await tg.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
