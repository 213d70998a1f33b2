import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';

export interface ServiceProcess {
  child: ChildProcess;
  url: string;
  /** Every log line seen so far (JSON lines from pino). */
  logs: string[];
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** The built service (`dist/src/main.js`) as its own process, as pm2 runs it. */
function spawnMain(env: Record<string, string>): ChildProcess {
  // The same flags as `npm start` and ecosystem.config.cjs.
  return spawn(process.execPath, ['--max-semi-space-size=1', path.resolve('dist/src/main.js')], {
    env: { PATH: process.env.PATH ?? '', BRAINSTEM_PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Runs the built service and waits until it listens. */
export async function spawnService(env: Record<string, string>, timeoutMs = 20_000): Promise<ServiceProcess> {
  const child = spawnMain(env);
  const logs: string[] = [];
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`service did not start in ${timeoutMs} ms: ${stderr}`)),
      timeoutMs,
    );
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      logs.push(line);
      const m = /"url":"(http:[^"]+)"/.exec(line);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`service exited with ${code} before listening: ${stderr}`));
    });
  });
  return {
    child,
    url,
    logs,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      const [code] = await once(child, 'exit');
      return code as number | null;
    },
  };
}

/** Runs the built service expecting it to refuse to start: its exit code and everything it wrote. */
export async function spawnRefused(
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnMain(env);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}
