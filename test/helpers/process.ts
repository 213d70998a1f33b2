import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { freshBuild } from './build.js';

export interface ServiceProcess {
  child: ChildProcess;
  url: string;
  /** Every log line seen so far (JSON lines from pino). */
  logs: string[];
  /** Everything it wrote to stderr so far (pino writes to stdout: stderr is for what went wrong). */
  stderr(): string;
  /** Resolves with the first log line (seen already or to come) that `test` accepts. */
  waitForLog(test: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface SpawnOptions {
  /**
   * `dist` (the default): the build, as `npm start` and pm2 run it, built from the files as they
   * were when the test run began (test/helpers/build.ts), so a test never runs an older build;
   * `sources`: src/main.ts through tsx, three to five times slower to start.
   */
  from?: 'sources' | 'dist';
  timeoutMs?: number;
  /** Called with the child as soon as it is spawned, before it listens (the start-up bench reads its CPU time). */
  onSpawn?: (child: ChildProcess) => void;
  /**
   * `started` (the default): resolves at the line announcing the URL, once every part has started;
   * `listening`: at the server's own "listening" line, which comes before the parts start.
   */
  until?: 'started' | 'listening';
}

/** Node's flags in `npm start` (ecosystem.config.cjs reads them there too). */
export function startFlags(): string[] {
  const pkg = JSON.parse(readFileSync(path.resolve('package.json'), 'utf8')) as {
    scripts: { start: string };
  };
  return pkg.scripts.start.split(/\s+/).filter((arg) => arg.startsWith('--'));
}

/** The service as its own process, as pm2 runs it (from the build unless the sources are asked for). */
async function spawnMain(
  env: Record<string, string>,
  from: SpawnOptions['from'] = 'dist',
): Promise<ChildProcess> {
  if (from === 'dist') await freshBuild();
  const entry =
    from === 'dist' ? [path.resolve('dist/src/main.js')] : ['--import', 'tsx', path.resolve('src/main.ts')];
  return spawn(process.execPath, [...startFlags(), ...entry], {
    env: { PATH: process.env.PATH ?? '', BRAINSTEM_PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Runs the service as its own process, as pm2 would, and waits until it listens. */
export async function spawnService(
  env: Record<string, string>,
  opts: SpawnOptions = {},
): Promise<ServiceProcess> {
  const { from = 'dist', timeoutMs = 60_000 } = opts;
  const child = await spawnMain(env, from);
  opts.onSpawn?.(child);
  const logs: string[] = [];
  const waiters = new Set<(line: string) => void>();
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    logs.push(line);
    for (const w of [...waiters]) w(line);
  });
  const waitForLog = (test: (line: string) => boolean, wait = 30_000) => {
    const seen = logs.find(test);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise<string>((resolve, reject) => {
      const done = () => {
        waiters.delete(check);
        clearTimeout(timer);
        child.off('exit', exited);
      };
      const check = (line: string) => {
        if (!test(line)) return;
        done();
        resolve(line);
      };
      const exited = (code: number | null) => {
        done();
        reject(new Error(`service exited with ${code} before the log line came: ${stderr}`));
      };
      // Only ends a failing test: the line is the event waited for.
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no such log line within ${wait} ms: ${stderr}`));
      }, wait);
      waiters.add(check);
      child.once('exit', exited);
    });
  };
  const ready = opts.until === 'listening' ? /Server listening at (http:[^"]+)"/ : /"url":"(http:[^"]+)"/;
  const line = await waitForLog((l) => ready.test(l), timeoutMs);
  const url = ready.exec(line)?.[1] as string;
  return {
    child,
    url,
    logs,
    stderr: () => stderr,
    waitForLog,
    stop: async (signal = 'SIGTERM') => {
      // Ended already (a signal's end leaves exitCode null): its exit came, and comes no more.
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const [code] = await once(child, 'exit');
      return code as number | null;
    },
  };
}

/** Runs the service expecting it to refuse to start: its exit code and everything it wrote. */
export async function spawnRefused(
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = await spawnMain(env);
  const output = collectOutput(child);
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout: output.stdout, stderr: output.stderr };
}

/** What a child writes to stdout and stderr, so far; `note` adds a line of the caller's to stderr. */
export function collectOutput(child: ChildProcess): {
  stdout: string;
  stderr: string;
  note(line: string): void;
} {
  const output = {
    stdout: '',
    stderr: '',
    note(line: string) {
      output.stderr += `\n${line}`;
    },
  };
  child.stdout?.on('data', (d: Buffer) => {
    output.stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output.stderr += d.toString();
  });
  return output;
}

/** A loopback port free right now (the OS picks it; the server is closed at once). */
export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}
