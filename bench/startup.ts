/**
 * Start-up and idle memory of the bundle as `npm start` runs it (node with the
 * start script's flags on dist/src/main.js), Telegram on against the Bot API
 * emulator, both brains configured (the Claude CLI against the fake Messages API,
 * the fake llama-server). `BENCH_ONLY=startup` runs only this (bench/results/startup.json).
 *
 * - startupToFirstAnswerMs: spawn → the first 200 on an authenticated /v1/models, polled
 *   every 2 ms from the spawn on a port chosen before it (the request goes on the connection that got in),
 *   on a data dir that exists (a restart, as pm2 does it; one warm-up start creates it).
 * - cpuToFirstAnswerMs: the CPU time the process spent until then (less sensitive to a busy machine).
 * - nodeFloorMs: the same measure for a bare node:http server with the same flags, the floor.
 * - idleRssMb: resident memory once idle after the start: the bot polls, the brains' readiness probes
 *   have answered, the spare Claude process is up, the idle memory release has run once
 *   (src/idle-memory.ts; the service logs at debug level for its line) and two of its windows
 *   have passed since all that, so a release the spare's start calls for has run too;
 *   idleRssNoSpareMb: the same with the Claude mode's `spares: 0` (median of three starts).
 * - compileCache: whether this Node keeps the bundle's compiled code between starts (22.1 and later).
 * - idleCpuMsPerMinute: once, after the last run's RSS: the CPU the idle service spends in a
 *   minute, its own, its children's that ended in it (the readiness probes' `claude auth status`),
 *   and that of its children that still run (`liveChildren`: the spare Claude process; the
 *   kernel counts a child's time in its parent's only once the child has ended).
 * - afterChats: once, after that minute: resident memory right after 600 streamed chats with the
 *   local model, one after the other, and idle again: one release window (5 s) after the idle
 *   memory release has run (src/idle-memory.ts), `releasedAfterMs` after the chats.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { startFakeLlama } from '../test/fakes/llama.js';
import { startFakeTelegram } from '../test/fakes/telegram.js';
import { freshBuild } from '../test/helpers/build.js';
import { freePort, type ServiceProcess, spawnService, startFlags } from '../test/helpers/process.js';
import { type BenchFixture, type BenchSetup, benchFixture } from './fixture.js';
import { childPids, cpuTimes, median, now, round, rssMb } from './stats.js';

const FLOOR_SERVER = `require('node:http').createServer((q, s) => s.end('ok')).listen(Number(process.env.PORT), '127.0.0.1');`;

/** The default modes (the Claude one with its spare), the local one without tools; no Claude turn. */
export const STARTUP_SETUP = {
  config: { defaultMode: 'assistant', modes: { local: { kind: 'llama', allowedTools: [] } } },
  concurrentTurns: 0,
  warmConversations: 0,
} satisfies BenchSetup;

/** The same with the Claude mode's `spares: 0`. */
export const STARTUP_NO_SPARE_SETUP: BenchSetup = {
  ...STARTUP_SETUP,
  config: {
    ...STARTUP_SETUP.config,
    modes: { ...STARTUP_SETUP.config.modes, assistant: { kind: 'claude', spares: 0 } },
  },
};

export async function startupBench(runs: number) {
  const llama = await startFakeLlama();
  const withLlama = (setup: BenchSetup) => ({
    ...setup,
    config: { ...setup.config, llama: { baseUrl: llama.baseUrl } },
  });
  const fx = await benchFixture('startup', withLlama(STARTUP_SETUP));
  const noSpare = await benchFixture('startup-nospare', withLlama(STARTUP_NO_SPARE_SETUP));
  const startup: number[] = [];
  const cpu: number[] = [];
  const rss: number[] = [];
  const rssNoSpare: number[] = [];
  const floor: number[] = [];
  let compileCache = false;
  let idleCpu: IdleCpu = { own: 0, children: 0, liveChildren: 0 };
  let afterChats: AfterChats | undefined;
  try {
    for (let i = 0; i <= runs; i++) {
      const run = await startOnce(fx, { spare: true, idleCpu: i === runs });
      compileCache = run.compileCache;
      if (run.idleCpu) idleCpu = run.idleCpu;
      if (run.afterChats) afterChats = run.afterChats;
      if (i === 0) continue; // warm-up: creates the data dir and fills the page cache
      startup.push(run.ms);
      cpu.push(run.cpuMs);
      rss.push(run.idleRssMb);
      // Right after each run, so that both see the same load on a shared machine.
      floor.push(await floorMs());
    }
    for (let i = 0; i <= SPARELESS_RUNS; i++) {
      const run = await startOnce(noSpare, { spare: false, idleCpu: false });
      if (i > 0) rssNoSpare.push(run.idleRssMb);
    }
    return {
      command: `node ${startFlags().join(' ')} dist/src/main.js`,
      startupToFirstAnswerMs: round(median(startup), 0),
      cpuToFirstAnswerMs: round(median(cpu), 0),
      nodeFloorMs: round(median(floor), 0),
      idleRssMb: round(median(rss), 1),
      // The same with `spares: 0`: the spare's CLI connects to /mcp, which loads the MCP SDK.
      idleRssNoSpareMb: round(median(rssNoSpare), 1),
      // Node 22.1 and later: V8's compiled code kept between starts (src/compile-cache.ts).
      compileCache,
      idleCpuMsPerMinute: idleCpu,
      afterChats,
      runs,
      targets: { startupToFirstAnswerMs: '<= 300', idleRssMb: '<= 70' },
    };
  } finally {
    await llama.close();
    await fx.close();
    await noSpare.close();
  }
}

/** How often src/idle-memory.ts looks at the event loop (its default window). */
const IDLE_WINDOW_MS = 5_000;

/** Starts of the spare-less configuration, after a warm-up one (idle memory only). */
const SPARELESS_RUNS = 3;

/** One start of the bundle on `fx`, Telegram on against a fresh Bot API emulator, stopped once measured. */
async function startOnce(fx: BenchFixture, opts: { spare: boolean; idleCpu: boolean }) {
  const tg = await startFakeTelegram();
  // The port is known before the spawn, so the clock stops at the first answer, not at
  // the start-up log line (written once every part has started, after that answer).
  const port = await freePort();
  // Outside the clock: the check that the build is current (spawnService makes it once).
  await freshBuild();
  let pid = 0;
  const t0 = now();
  const spawning = spawnService(
    {
      ...fx.env,
      // For the idle memory release's line (below); only that part logs at debug when idle.
      LOG_LEVEL: 'debug',
      BRAINSTEM_PORT: String(port),
      TELEGRAM_BOT_TOKEN: tg.token,
      TELEGRAM_API_ROOT: tg.apiRoot,
    },
    { from: 'dist', onSpawn: (child) => (pid = child.pid ?? 0) },
  );
  await firstOk(`http://127.0.0.1:${port}/v1/models`, fx.auth);
  const ms = now() - t0;
  const cpuMs = cpuTimes(pid).ownMs;
  const svc = await spawning;
  try {
    // Idle: the bot polls and every brain's readiness probe has answered (the CLI's start is over).
    await tg.waitFor(() => tg.polling.maxConcurrent > 0, { timeoutMs: 30_000 });
    for (const mode of ['assistant', 'local']) {
      await svc.waitForLog((l) => l.includes(`"msg":"brain ${mode}: `));
    }
    if (opts.spare) await svc.waitForLog((l) => l.includes('"msg":"spare Claude process ready"'), 60_000);
    const compileCache = (await svc.waitForLog((l) => l.includes('compile cache: '))).includes(
      'compile cache: on',
    );
    // Resident memory peaks while the start's garbage is collected; the idle memory release gives
    // it back at the end of the first window (5 s) the event loop was idle in, which on a busy
    // machine came 9.2 and 11.6 s after the spare was ready: a reading at a fixed 8 s was of the
    // state before it there, and after it on a quiet machine. So: once the release has run, and two
    // windows after the spare, in which any release the spare's start calls for has run as well.
    const settled = now() + 2 * IDLE_WINDOW_MS + 500;
    await svc.waitForLog((l) => l.includes('"msg":"idle: heap released"'), 60_000);
    await sleep(Math.max(0, settled - now()));
    const idleRssMb = rssMb(pid);
    const idleCpu = opts.idleCpu ? await idleCpuPerMinute(pid) : undefined;
    const afterChats = opts.idleCpu ? await rssAfterChats(svc, pid, port, fx) : undefined;
    return { ms, cpuMs, idleRssMb, compileCache, idleCpu, afterChats };
  } finally {
    await svc.stop();
    await tg.close();
  }
}

/** Spawn → first answer of a bare node:http server started with the same flags, polled the same way. */
async function floorMs(): Promise<number> {
  const port = await freePort();
  const t0 = now();
  const child = spawn(process.execPath, [...startFlags(), '-e', FLOOR_SERVER], {
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await firstOk(`http://127.0.0.1:${port}/`, {});
  const ms = now() - t0;
  child.kill();
  await once(child, 'exit');
  return ms;
}

/**
 * Polls until the URL answers 200: a bare TCP connect every 2 ms until the port
 * takes one (cheap, so the polling takes little of the CPU the start needs), then
 * the request on that same connection. Closing it and asking again with `fetch`
 * (a new connection, and the bench's own HTTP client) stopped the clock some
 * milliseconds after the answer, more on a busy machine.
 */
async function firstOk(url: string, headers: Record<string, string>): Promise<void> {
  const { hostname, port, pathname } = new URL(url);
  for (;;) {
    const socket = connect(Number(port), hostname);
    const listening = await new Promise<boolean>((resolve) => {
      socket.once('connect', () => resolve(true));
      socket.once('error', () => resolve(false));
    });
    if (listening) {
      const status = await statusOf(socket, pathname, { ...headers, host: `${hostname}:${port}` });
      socket.destroy();
      if (status === 200) return;
      throw new Error(`${url}: HTTP ${status} at the first answer`);
    }
    socket.destroy();
    await sleep(2);
  }
}

/** Sends one GET on a connected socket; resolves with the status code of its answer (0: none came). */
function statusOf(socket: Socket, path: string, headers: Record<string, string>): Promise<number> {
  const head = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.write(`GET ${path} HTTP/1.1\r\n${head}connection: close\r\n\r\n`);
  return new Promise((resolve) => {
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const line = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (line) resolve(Number(line[1]));
    });
    socket.once('close', () => resolve(0));
    socket.once('error', () => resolve(0));
  });
}

type IdleCpu = { own: number; children: number; liveChildren: number };

/** Two background readiness rounds (every 30 s by default) fall in one minute. */
async function idleCpuPerMinute(pid: number): Promise<IdleCpu> {
  const before = cpuTimes(pid);
  const live = new Map(childPids(pid).map((child) => [child, cpuTimes(child).ownMs]));
  await sleep(60_000);
  const after = cpuTimes(pid);
  let liveChildren = 0;
  // A child that ended in the minute is in `children` (its whole life's time, an overcount).
  for (const child of childPids(pid)) {
    const start = live.get(child);
    if (start !== undefined) liveChildren += cpuTimes(child).ownMs - start;
  }
  return { own: after.ownMs - before.ownMs, children: after.childrenMs - before.childrenMs, liveChildren };
}

type AfterChats = {
  chats: number;
  rssMb: number;
  idleRssMb: number;
  /** When the idle memory release ran after the chats, from their end. */
  releasedAfterMs: number;
};

/** Resident memory after a day's worth of chats with the local model, then once idle again. */
async function rssAfterChats(
  svc: ServiceProcess,
  pid: number,
  port: number,
  fx: BenchFixture,
): Promise<AfterChats> {
  const chats = 600;
  for (let c = 0; c < chats; c++) {
    const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...fx.auth, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'local',
        stream: true,
        messages: [{ role: 'user', content: `question ${c}: ${'some words '.repeat(50)}` }],
      }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`chat ${c}: HTTP ${res.status}: ${text}`);
  }
  const rssAfter = rssMb(pid);
  const end = Date.now();
  // Idle again once the idle memory release has run (the chats grew far more than its 4 MB),
  // plus one of its windows for what Node 20's sweeper frees after it. The release waits for a
  // window the event loop was idle in: on a busy machine it came 14.6 s after the chats in one run
  // and 5.2 s in another, so a reading at a fixed 15 s could fall on either side of it.
  const line = await svc.waitForLog(
    (l) => l.includes('"msg":"idle: heap released"') && (JSON.parse(l) as { time: number }).time >= end,
    60_000,
  );
  await sleep(IDLE_WINDOW_MS);
  return {
    chats,
    rssMb: round(rssAfter, 1),
    idleRssMb: round(rssMb(pid), 1),
    releasedAfterMs: (JSON.parse(line) as { time: number }).time - end,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
