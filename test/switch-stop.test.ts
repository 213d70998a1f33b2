import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeLlama, startFakeLlama } from './fakes/llama.js';
import { type ServiceProcess, spawnService } from './helpers/process.js';
import { isAlive as alive, killPidIn } from './helpers/procs.js';

/**
 * pm2 stops brainstem (SIGTERM, then SIGKILL after its kill_timeout of 15 s: ecosystem.config.cjs)
 * while a switch waits: for a Claude mode's login check (a `claude` whose `auth status` never
 * answers), or for a llama model's start command that never returns. brainstem as its own process,
 * from the build.
 */
let llama: FakeLlama;
let dir: string;
const spawned: ServiceProcess[] = [];

beforeAll(async () => {
  llama = await startFakeLlama();
  dir = mkdtempSync(path.join(tmpdir(), 'bst-switch-stop-'));
});
afterAll(async () => {
  for (const p of spawned) await p.stop('SIGKILL');
  // A login check or a model command that outlived a brainstem killed with SIGKILL; one that ended
  // long ago may have left its pid to another process, which killPidIn leaves be.
  for (const file of [`${cli()}.pid`, swapPidFile(), stopPidFile()]) killPidIn(file, 'SIGKILL');
  await rm(dir, { recursive: true, force: true });
  await llama?.close();
});

const cli = () => path.join(dir, 'claude');
/** Where the model command that hangs writes its pid. */
const swapPidFile = () => path.join(dir, 'swap.pid');
/** Where the model stop command that hangs writes its pid. */
const stopPidFile = () => path.join(dir, 'stop.pid');
/**
 * The pid a hanging process wrote into `file` before it waits, once it has: a file just created and
 * not yet written is no pid (0 would have process.kill signal the test run's own group).
 */
const pidIn = (file: string) => {
  const pid = existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : 0;
  return pid > 1 ? pid : undefined;
};
/** The pid of the last login check that hung. */
const checkPid = () => pidIn(`${cli()}.pid`);

/** A `claude` whose login check hangs until the file `claude.ok` exists, then says it is logged in with a key. */
function hangingCli(): void {
  writeFileSync(
    cli(),
    `#!/bin/sh
if [ -e "$0.ok" ]; then echo '{"loggedIn":true,"authMethod":"api_key","apiKeySource":"ANTHROPIC_API_KEY"}'; exit 0; fi
echo $$ > "$0.pid"
exec sleep 600
`,
    { mode: 0o755 },
  );
}

async function start(): Promise<{ p: ServiceProcess; token: string }> {
  const file = path.join(dir, 'brainstem.json');
  writeFileSync(
    file,
    JSON.stringify({
      dataDir: path.join(dir, 'data'),
      defaultMode: 'local',
      server: { modeTag: false },
      claude: { bin: cli() },
      llama: { baseUrl: llama.baseUrl },
    }),
  );
  const p = await spawnService({ BRAINSTEM_CONFIG: file, HOME: dir });
  spawned.push(p);
  const token = (await readFile(path.join(dir, 'data', 'api-token'), 'utf8')).trim();
  return { p, token };
}

/** A chat turn on the OpenAI endpoint; what it ends with (an answer or a cut connection) is not looked at. */
const askInWords = (p: ServiceProcess, token: string, text: string) =>
  fetch(`${p.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'active', messages: [{ role: 'user', content: text }] }),
  }).catch((err: unknown) => err);

/**
 * brainstem with llama modes whose models run `models`' commands, on the fake llama-server, in data
 * directory `name`; qwen's mode is the default.
 */
async function startLlama(
  name: string,
  models: Record<string, { start: string[][]; stop: string[][] }>,
  modes: Record<string, { kind: 'llama'; llamaModel?: string; description: string }>,
): Promise<{ p: ServiceProcess; token: string }> {
  const file = path.join(dir, `${name}.json`);
  const withUpstream = Object.fromEntries(
    Object.entries(modes).map(([id, m]) => [id, { ...m, baseUrl: llama.baseUrl }]),
  );
  writeFileSync(
    file,
    JSON.stringify({
      dataDir: path.join(dir, name),
      defaultMode: 'qwen',
      server: { modeTag: false },
      modes: withUpstream,
      llama: { models },
    }),
  );
  const p = await spawnService({ BRAINSTEM_CONFIG: file, HOME: dir });
  spawned.push(p);
  const token = (await readFile(path.join(dir, name, 'api-token'), 'utf8')).trim();
  return { p, token };
}

/** A model command (argv) that never returns: it writes its pid to `pidFile`, then waits. */
const hanging = (pidFile: string) => [
  process.execPath,
  '-e',
  `require('node:fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); setInterval(() => {}, 60_000);`,
];

/** A switch through the tools' API, as an operator makes one; resolves once it ended. */
async function switchTo(p: ServiceProcess, token: string, mode: string): Promise<unknown> {
  const res = await fetch(`${p.url}/api/mode`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ mode }),
  });
  return { status: res.status, body: await res.json() };
}

/**
 * Once the model command that hangs wrote its pid to `pidFile`, stops brainstem as pm2 does
 * (SIGTERM): it exits 0 on its own, leaves the switch to the next start, and ends the command.
 */
async function stopDuring(p: ServiceProcess, pidFile: string): Promise<void> {
  await expect.poll(() => pidIn(pidFile), { timeout: 30_000 }).toBeDefined();
  const command = pidIn(pidFile) as number;
  const exited = once(p.child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  p.child.kill('SIGTERM');
  const [code, signal] = await exited;
  expect({ code, signal }).toEqual({ code: 0, signal: null });
  await logged(p, 'stopped');
  await logged(p, 'brainstem is stopping: the switch is left to the next start');
  await expect.poll(() => alive(command), { timeout: 10_000 }).toBe(false);
}

const logged = (p: ServiceProcess, msg: string) => p.waitForLog((l) => l.includes(`"msg":"${msg}"`));

describe('a stop during a switch to a Claude mode whose login check hangs', { timeout: 120_000 }, () => {
  it('exits on its own before pm2 would kill it, and the next start finishes the switch', async () => {
    hangingCli();
    const { p, token } = await start();
    // Asked in words on the OpenAI endpoint: the answer waits for the switch, which waits for the check.
    const asked = askInWords(p, token, 'mode assistant');
    await logged(p, 'switch started');
    // The check is running: its process wrote its pid.
    await expect.poll(checkPid, { timeout: 30_000 }).toBeDefined();
    const check = checkPid() as number;

    // As pm2 does: SIGTERM, then SIGKILL once kill_timeout (15 s) is over; sent here a second early.
    const exited = once(p.child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    p.child.kill('SIGTERM');
    const pm2 = setTimeout(() => p.child.kill('SIGKILL'), 14_000);
    const [code, signal] = await exited;
    clearTimeout(pm2);
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    // The orderly shutdown ran to its end (its last lines may come after the exit: waited for).
    await logged(p, 'stopped');
    await logged(p, 'brainstem is stopping: the switch is left to the next start');
    // The check was ended with it, not left behind.
    await expect.poll(() => alive(check), { timeout: 10_000 }).toBe(false);
    await asked;

    // The next start finds the switch the stop cut, and finishes it now that the CLI answers.
    writeFileSync(`${cli()}.ok`, '');
    const next = await start();
    const resumed = JSON.parse(await logged(next.p, 'resuming the switch a restart cut'));
    expect(resumed).toMatchObject({ to: 'assistant' });
    const done = JSON.parse(await logged(next.p, 'switch done'));
    expect(done).toMatchObject({ from: 'local', to: 'assistant' });
    expect(await next.p.stop('SIGTERM')).toBe(0);
  });
});

describe('a stop during a llama model swap whose start command hangs', { timeout: 120_000 }, () => {
  it('cuts the command and leaves the switch to the next start, without holding the turn that waits for it', async () => {
    const pidFile = swapPidFile();
    // A `systemctl start` that never returns.
    const { p, token } = await startLlama(
      'swap-data',
      { qwen: { start: [], stop: [] }, coder: { start: [hanging(pidFile)], stop: [] } },
      {
        qwen: { kind: 'llama', llamaModel: 'qwen', description: 'Qwen' },
        coder: { kind: 'llama', llamaModel: 'coder', description: 'Coder' },
      },
    );
    // Asked in words: the turn waits for the switch, which waits for the command.
    const asked = askInWords(p, token, 'mode coder');
    await logged(p, 'switch started');
    await stopDuring(p, pidFile);
    const cut = JSON.parse(await logged(p, 'llama swap command failed'));
    expect(cut.reason).toMatch(/^the swap was cancelled while/);
    // The turn ended with the switch, not at the end of the stop's grace period.
    expect(p.logs.some((l) => l.includes('grace period over'))).toBe(false);
    await asked;
  });
});

describe('a stop during a llama model swap whose stop command hangs', { timeout: 120_000 }, () => {
  it('leaves the model it was stopping recorded, and the next start runs its stop command again', async () => {
    const pidFile = stopPidFile();
    const runs = path.join(dir, 'stop-runs');
    const release = path.join(dir, 'stop-release');
    // A `systemctl stop` that notes each run, and hangs until `release` exists.
    const stop = [
      process.execPath,
      '-e',
      `const fs = require('node:fs');
fs.appendFileSync(${JSON.stringify(runs)}, 'ran\\n');
if (!fs.existsSync(${JSON.stringify(release)})) {
  fs.writeFileSync(${JSON.stringify(pidFile)}, String(process.pid));
  setInterval(() => {}, 60_000);
}`,
    ];
    const begin = () =>
      startLlama(
        'stop-data',
        { qwen: { start: [], stop: [] }, coder: { start: [], stop: [stop] } },
        {
          qwen: { kind: 'llama', llamaModel: 'qwen', description: 'Qwen' },
          coder: { kind: 'llama', llamaModel: 'coder', description: 'Coder' },
          // Whatever model the server has: nothing names the one loaded while it is active.
          any: { kind: 'llama', description: 'Any model' },
        },
      );
    const { p, token } = await begin();
    // Coder is loaded; a mode that starts no model leaves it running.
    expect(await switchTo(p, token, 'coder')).toMatchObject({ status: 200 });
    expect(await switchTo(p, token, 'any')).toMatchObject({ status: 200 });
    const asked = switchTo(p, token, 'qwen').catch((err: unknown) => err);
    // Stopped while coder's stop command runs.
    await stopDuring(p, pidFile);
    // Not a failed switch: one the next start makes, said as the stop that postponed it.
    expect(await asked).toMatchObject({
      status: 503,
      body: {
        error: {
          type: 'server_error',
          code: 'shutting_down',
          param: 'mode',
          message: 'brainstem is restarting: it makes the switch once it is back',
        },
      },
    });

    // The next start, finishing the switch to qwen, stops coder first: it may still be up.
    writeFileSync(release, '');
    const next = await begin();
    await logged(next.p, 'resuming the switch a restart cut');
    const done = JSON.parse(await logged(next.p, 'switch done'));
    expect(done).toMatchObject({ from: 'any', to: 'qwen' });
    expect(readFileSync(runs, 'utf8')).toBe('ran\nran\n');
    expect(await next.p.stop('SIGTERM')).toBe(0);
  });
});
