/**
 * A stand-in `claude` binary for readiness tests: a small script that asks a
 * server in the test what to print, so a test decides the login state and can
 * hold a probe mid-run for as long as it likes (a slow CLI start, without a
 * timing window).
 *
 *   const cli = await startFakeClaudeCli({ loggedIn: true });
 *   cli.bin                   // put it in claude.bin / CLAUDE_BIN
 *   cli.hold()                // runs from now on wait inside the binary…
 *   await cli.waitForRun()    // …until one is running (resolves with how many ran so far)
 *   cli.release()             // …and answer when released
 *   cli.runs                  // argv of every run, in order
 *   await cli.close()
 *
 * It answers `auth status` with `{"loggedIn":…,"authMethod":…}` (exit code 1
 * when logged out, like 2.1.197) and `--version` with a version line; anything
 * else exits 1.
 */
import { once } from 'node:events';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface FakeClaudeCli {
  bin: string;
  runs: string[][];
  /** Runs still waiting inside the binary. */
  readonly waiting: number;
  setLoggedIn(loggedIn: boolean): void;
  hold(): void;
  release(): void;
  /** Resolves once a run that started after `afterRuns` runs is inside the binary. */
  waitForRun(afterRuns?: number): Promise<number>;
  close(): Promise<void>;
}

export async function startFakeClaudeCli(opts: { loggedIn?: boolean } = {}): Promise<FakeClaudeCli> {
  let loggedIn = opts.loggedIn ?? true;
  let gate: { promise: Promise<void>; open: () => void } | undefined;
  let waiting = 0;
  const runs: string[][] = [];
  const watchers: (() => void)[] = [];

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const args = JSON.parse(url.searchParams.get('args') ?? '[]') as string[];
    runs.push(args);
    for (const w of watchers.splice(0)) w();
    if (gate) {
      waiting++;
      await gate.promise;
      waiting--;
    }
    const line = args.join(' ');
    let answer: { stdout: string; code: number };
    if (line.startsWith('auth status')) {
      answer = {
        stdout: `${JSON.stringify({ loggedIn, authMethod: loggedIn ? 'api_key' : 'none', apiProvider: 'firstParty' }, null, 2)}\n`,
        code: loggedIn ? 0 : 1,
      };
    } else if (line === '--version') answer = { stdout: '9.9.9 (Claude Code fake)\n', code: 0 };
    else answer = { stdout: '', code: 1 };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const dir = await mkdtemp(path.join(tmpdir(), 'fake-claude-'));
  const bin = path.join(dir, 'claude.mjs');
  await writeFile(
    bin,
    `#!${process.execPath}
const res = await fetch(${JSON.stringify(base)} + '/run?args=' + encodeURIComponent(JSON.stringify(process.argv.slice(2))));
const { stdout, code } = await res.json();
process.stdout.write(stdout);
process.exitCode = code;
`,
  );
  await chmod(bin, 0o755);

  return {
    bin,
    runs,
    get waiting() {
      return waiting;
    },
    setLoggedIn: (value) => {
      loggedIn = value;
    },
    hold: () => {
      let open!: () => void;
      const promise = new Promise<void>((resolve) => {
        open = resolve;
      });
      gate = { promise, open };
    },
    release: () => {
      gate?.open();
      gate = undefined;
    },
    waitForRun: (afterRuns = 0) =>
      new Promise<number>((resolve) => {
        const check = () => {
          if (runs.length > afterRuns) resolve(runs.length);
          else watchers.push(check);
        };
        check();
      }),
    close: async () => {
      gate?.open();
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
      await rm(dir, { recursive: true, force: true });
    },
  };
}
