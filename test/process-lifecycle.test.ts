import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGate, text } from './fakes/anthropic.js';
import { type FakeLlama, startFakeLlama } from './fakes/llama.js';
import { type FakeTelegram, startFakeTelegram } from './fakes/telegram.js';
import { claudeOnFake } from './helpers/claude-fake.js';
import { freePort, spawnRefused, spawnService } from './helpers/process.js';
import { processesIn } from './helpers/procs.js';
import { CLAUDE_BIN } from './helpers/service.js';

/**
 * The service as its own process (as pm2 runs it, from the build, made again
 * first if stale: test/helpers/build.ts): state survives a restart, SIGTERM lets running
 * turns finish or cuts them with a notice.
 */
const claude = claudeOnFake();
let llama: FakeLlama;

beforeAll(async () => {
  llama = await startFakeLlama();
});
afterAll(async () => {
  await llama?.close();
});

const shuttingDown = (line: string) => line.includes('"msg":"shutting down"');

/**
 * A data dir and config for one service. Without `withClaude`, the default Claude modes get a
 * missing binary: their probes fail at once, where the real CLI's `auth status` costs seconds of
 * CPU per start and a SIGTERM waits for it.
 */
function setup(extra: Record<string, unknown> = {}, { withClaude = true } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'bst-proc-'));
  const file = path.join(dir, 'brainstem.json');
  writeFileSync(
    file,
    JSON.stringify({
      dataDir: path.join(dir, 'data'),
      claude: withClaude
        ? { bin: CLAUDE_BIN, env: claude.cli.env, maxRetries: 0 }
        : { bin: path.join(dir, 'no-claude') },
      llama: { baseUrl: llama.baseUrl },
      ...extra,
    }),
  );
  const processEnv = (more: Record<string, string> = {}) => ({ BRAINSTEM_CONFIG: file, HOME: dir, ...more });
  const start = async (more: Record<string, string> = {}) => {
    const p = await spawnService(processEnv(more));
    const token = (await readFile(path.join(dir, 'data', 'api-token'), 'utf8')).trim();
    return { p, token, client: new OpenAI({ baseURL: `${p.url}/v1`, apiKey: token, maxRetries: 0 }) };
  };
  return { dir, processEnv, start };
}

describe('restart', { timeout: 180_000 }, () => {
  it('keeps the active mode, the Claude sessions and the usage ledger', async () => {
    const { dir, start } = setup({ server: { modeTag: false } });
    // The second answer depends on the first exchange reaching the API again: lost history, wrong answer.
    claude.fake.script((r) => {
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
    claude.fake.script(() => text(['part one', ' part two'], { gate: g.promise, gateAfter: 1 }));
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
    // The stream's connection, kept alive by the client, was closed once its answer was sent.
    expect(p.logs.filter((l) => l.includes('HTTP connections still open'))).toEqual([]);
  });

  it('cuts a turn that outlives the grace period, tells the client, leaves no child', async () => {
    const { dir, start } = setup({ server: { shutdownGraceMs: 300 } });
    const { p, client } = await start();
    const g = createGate();
    claude.fake.script(() => text(['never', ' finished'], { gate: g.promise, gateAfter: 1 }));
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

  it('answers a turn cut before its first word 503 shutting_down, which a client retries', async (ctx) => {
    const { start } = setup({ server: { shutdownGraceMs: 300 } }, { withClaude: false });
    const { p, client } = await start();
    const arrived = createGate();
    const held = createGate();
    // The fake is shared by the file: later tests expect its echo.
    ctx.onTestFinished(() => llama.script());
    llama.script(() => {
      arrived.open();
      return { chunks: [{ wait: held.promise }, 'late'] };
    });
    const answer = client.chat.completions
      .create({ model: 'local', messages: [{ role: 'user', content: 'slow one' }] })
      .catch((e: unknown) => e);
    await arrived.promise;
    const exit = p.stop('SIGTERM');
    const err = await answer;
    held.open();
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err).toMatchObject({
      status: 503,
      code: 'shutting_down',
      message: expect.stringMatching(/restarting/),
    });
    expect(await exit).toBe(0);
  });

  it('exits at once on a second signal', async () => {
    const { start } = setup({ server: { shutdownGraceMs: 30_000 } });
    const { p, client } = await start();
    const g = createGate();
    // Held after its first words: a turn still running when the stop begins, for the whole grace.
    claude.fake.script(() => text(['stuck', ' until the gate opens'], { gate: g.promise, gateAfter: 1 }));
    const stream = await client.chat.completions.create({
      model: 'assistant',
      messages: [{ role: 'user', content: 'stuck task' }],
      stream: true,
    });
    // Its words, not its first chunk: the headers and the role chunk go out before the turn runs when
    // it waits to start (server.streamHeadersWaitMs), and a turn not running yet when the stop begins
    // is refused (SHUTTING_DOWN), so the first stop would end at once with 0, the second not needed.
    // Read by hand: leaving a for-await loop would close the stream, ending the turn.
    const it = stream[Symbol.asyncIterator]();
    for (let r = await it.next(); !r.done; r = await it.next())
      if (/stuck/.test(r.value.choices[0]?.delta?.content ?? '')) break;
    p.child.kill('SIGTERM');
    // Two signals sent at once may reach the process as one: the second goes once the first was handled.
    await p.waitForLog(shuttingDown);
    const code = await p.stop('SIGTERM');
    expect(code).toBe(1);
    g.open();
  });
});

describe('a stop on a full disk', { timeout: 180_000 }, () => {
  it('says the last writes stay in the WAL for the next start, closes the database and exits 0', async () => {
    const { dir, start } = setup({}, { withClaude: false });
    const one = await start({
      NODE_OPTIONS: `--require ${path.resolve('test/helpers/no-room-to-grow.cjs')}`,
    });
    const file = path.join(dir, 'data', 'brainstem.sqlite');
    // Writes the checkpoint at the stop must copy into the database file: a second connection's,
    // left in the WAL (brainstem's own connection, open, keeps this close from checkpointing).
    const other = new Database(file);
    other.pragma('wal_autocheckpoint = 0');
    other
      .prepare('INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?)')
      .run('full-disk-probe', 'x'.repeat(200_000), Date.now());
    other.close();
    // No room for the database file to grow: what a full disk does to that checkpoint (here the
    // process's file size limit, so SQLite's write fails as it would on a disk with no space left).
    const { size } = await stat(file);
    execFileSync('prlimit', ['--pid', String(one.p.child.pid), `--fsize=${size}`]);
    expect(await one.p.stop('SIGTERM')).toBe(0);
    const warned = JSON.parse(await one.p.waitForLog((l) => l.includes('the last writes stay in')));
    expect(warned.level).toBe(40);
    expect(warned.msg).toContain(`${file}-wal`);
    expect(warned.msg).toContain('The next start reads them back: nothing is lost');
    expect(one.p.logs.some((l) => l.includes('"msg":"stopped"'))).toBe(true);
    expect(one.p.logs.filter((l) => l.includes('shutdown failed'))).toEqual([]);
    // The next start reads what the WAL kept.
    const two = await start();
    const db = new Database(file, { readonly: true });
    const kept = db.prepare('SELECT length(value) AS n FROM kv WHERE key = ?').get('full-disk-probe');
    db.close();
    expect(await two.p.stop('SIGTERM')).toBe(0);
    expect(kept).toEqual({ n: 200_000 });
  });
});

describe('a stop during the start', () => {
  it('a SIGTERM sent as soon as it says it listens stops it cleanly, before its parts have all started', async () => {
    // The server's own listening line comes before the parts start (the URL is announced once they
    // have): a SIGTERM sent then found no handler, and killed it.
    // A start whose signal came too late (a busy machine) proves nothing: the next one tries again.
    const codes: (number | null)[] = [];
    let inTheWindow = false;
    for (let i = 0; i < 5 && !inTheWindow; i++) {
      const { processEnv } = setup();
      const p = await spawnService(processEnv(), { until: 'listening' });
      codes.push(await p.stop('SIGTERM'));
      const at = (text: string) => p.logs.findIndex((line) => line.includes(text));
      const announced = at('"url":"http:');
      // Killed before its announcement, or asked to stop before it.
      inTheWindow = announced === -1 || at('"msg":"shutting down"') < announced;
    }
    expect(inTheWindow).toBe(true);
    expect(codes.every((code) => code === 0)).toBe(true);
  }, 60_000);
});

describe('one instance per data dir', () => {
  it('a second instance on the same data dir exits at once, naming the first; the first runs on, and leaves no stale lock', async () => {
    const tg = await startFakeTelegram();
    // The second instance gets a Bot API of its own, so what it calls is told apart from the first's calls.
    const tg2 = await startFakeTelegram();
    const bot = (t: FakeTelegram) => ({
      TELEGRAM_BOT_TOKEN: t.token,
      TELEGRAM_API_ROOT: t.apiRoot,
      TELEGRAM_ALLOWED_USERS: '111',
    });
    const { processEnv, start } = setup({}, { withClaude: false });
    const one = await start(bot(tg));
    try {
      const two = await spawnRefused(processEnv(bot(tg2)));
      expect(two.code).toBe(1);
      expect(two.stderr).toContain(`another brainstem (pid ${one.p.child.pid}) already runs on the data dir`);
      // Refused before anything started: not one log line, not one Bot API call.
      expect(two.stdout).toBe('');
      expect(tg2.calls).toEqual([]);

      expect(one.p.child.exitCode).toBeNull();
      const answer = await one.client.chat.completions.create({
        model: 'local',
        messages: [{ role: 'user', content: 'still there?' }],
      });
      expect(answer.choices[0]?.message.content).toContain('still there?');
      await tg.waitFor(() => tg.calls.some((c) => c.method === 'getMe'), { timeoutMs: 30_000 });
    } finally {
      // kill -9: no chance to clean up, and still no stale lock, since the kernel drops it with the process.
      await one.p.stop('SIGKILL');
      await tg.close();
      await tg2.close();
    }
    const three = await start();
    expect(await three.p.stop('SIGTERM')).toBe(0);
  });

  /** A brainstem whose preload puts the bot token `secret` in an error: unhandled, or thrown at listen. */
  const SECRET = '123456789:AAH-not-a-real-bot-token-0123456789ab';
  const withTokenInAnError = (failListen: false | 'error' | 'string') =>
    spawnRefused(
      setup({}, { withClaude: false }).processEnv({
        NODE_OPTIONS: `--require ${path.resolve('test/helpers/reject-at-listen.cjs')}`,
        BRAINSTEM_TEST_SECRET: SECRET,
        ...(failListen ? { BRAINSTEM_TEST_FAIL_LISTEN: failListen } : {}),
      }),
    );

  it('an error nothing handled ends the process with exit code 1, logged with the bot token in it scrubbed', async () => {
    const r = await withTokenInAnError(false);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('"msg":"crashed: a rejection nothing handled"');
    expect(r.stdout).toContain('/bot[redacted]/getUpdates');
    expect(`${r.stdout}${r.stderr}`).not.toContain(SECRET.split(':')[1]);
  });

  it('a start that fails says why on stderr with the secrets in its error scrubbed', async () => {
    const r = await withTokenInAnError('error');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('brainstem: failed to start: request to https://api.telegram.org/bot');
    expect(`${r.stdout}${r.stderr}`).not.toContain(SECRET.split(':')[1]);
  });

  it('a start that fails with a thrown string, not an Error, still says why, scrubbed', async () => {
    const r = await withTokenInAnError('string');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('brainstem: failed to start: request to https://api.telegram.org/bot');
    expect(`${r.stdout}${r.stderr}`).not.toContain(SECRET.split(':')[1]);
  });

  it('a shortcut naming no tool stops the start with exit code 2 (pm2 does not restart it)', async () => {
    const { dir, processEnv } = setup({ tools: { shortcuts: { hello: { tool: 'nope' } } } });
    const r = await spawnRefused(processEnv());
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${path.join(dir, 'brainstem.json')}: tools.shortcuts.hello`);
    expect(r.stderr).not.toMatch(/ at /);
  });

  it('a state database that is not a database stops the start with exit code 2, naming the file, which stays as it was', async () => {
    const { dir, processEnv } = setup();
    const db = path.join(dir, 'data', 'brainstem.sqlite');
    mkdirSync(path.dirname(db), { recursive: true });
    const garbage = 'not a database '.repeat(300);
    writeFileSync(db, garbage);
    const r = await spawnRefused(processEnv());
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`the state database ${db} cannot be used (file is not a database)`);
    expect(r.stderr).toContain('Move it aside to start with a new one');
    expect(r.stderr).not.toMatch(/ at /);
    expect(readFileSync(db, 'utf8')).toBe(garbage);
  });

  it("a data dir it cannot write (a read-only mount, another user's files) stops the start with exit code 2, naming the file and what to do", async () => {
    // /proc is read-only for root too: where a read-only mount or another user's folder refuses the first write.
    const { processEnv } = setup({}, { withClaude: false });
    const dataDir = '/proc/self/fdinfo';
    const r = await spawnRefused(processEnv({ BRAINSTEM_DATA_DIR: dataDir }));
    // Exit code 1 ("failed to start: unable to open database file", no file named) made pm2 restart it for ever.
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `brainstem: brainstem cannot write ${dataDir}/instance.lock (unable to open database file)`,
    );
    expect(r.stderr).toContain(`give that user the data dir (\`sudo chown -R `);
    expect(r.stderr).toContain('mount it read-write or set BRAINSTEM_DATA_DIR to a writable folder');
    expect(r.stderr).not.toMatch(/ at /);
  });

  it('a data dir that is a file, or lies under one, stops the start with exit code 2, saying so and which setting to change', async () => {
    const { dir, processEnv } = setup({}, { withClaude: false });
    const file = path.join(dir, 'not-a-folder');
    writeFileSync(file, 'x');
    for (const dataDir of [file, path.join(file, 'data')]) {
      const r = await spawnRefused(processEnv({ BRAINSTEM_DATA_DIR: dataDir }));
      // Was exit code 1 with Node's bare "EEXIST: file already exists, mkdir …" (or ENOTDIR), which
      // named neither the data dir nor the setting, and which pm2 restarted for ever.
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(
        `brainstem: the data dir ${dataDir} cannot be used: ${file} is a file, not a folder. Set BRAINSTEM_DATA_DIR (or dataDir in brainstem.json) to a folder, or move that file aside; then start brainstem again.\n`,
      );
      expect(readFileSync(file, 'utf8')).toBe('x');
    }
  });

  it('better-sqlite3 built for another Node (a Node upgrade without npm rebuild) stops the start with exit code 2, saying the command that fixes it', async () => {
    const { processEnv } = setup({}, { withClaude: false });
    const r = await spawnRefused(
      processEnv({ NODE_OPTIONS: `--require ${path.resolve('test/helpers/sqlite-other-node.cjs')}` }),
    );
    // Exit code 1 made pm2 restart it for ever, each start failing the same way.
    expect(r.code).toBe(2);
    const mine = Number(process.versions.modules);
    expect(r.stderr).toBe(
      `brainstem: better-sqlite3's native module cannot be loaded by Node ${process.versions.node} (it was built for NODE_MODULE_VERSION ${mine + 22}, this Node needs ${mine}): run \`npm rebuild better-sqlite3\` in ${process.cwd()} with the Node that runs brainstem, then start brainstem again\n`,
    );
  });

  it('a second instance on a taken port starts nothing before it exits', async () => {
    const tg = await startFakeTelegram();
    const first = setup({}, { withClaude: false });
    const one = await first.start();
    try {
      const port = new URL(one.p.url).port;
      const second = setup({}, { withClaude: false });
      const two = await spawnRefused(
        second.processEnv({
          BRAINSTEM_PORT: port,
          TELEGRAM_BOT_TOKEN: tg.token,
          TELEGRAM_API_ROOT: tg.apiRoot,
          TELEGRAM_ALLOWED_USERS: '111',
        }),
      );
      expect(two.code).toBe(1);
      expect(two.stderr).toBe(
        `brainstem: failed to start: 127.0.0.1:${port} is already in use (EADDRINUSE): stop the program that listens there, or give brainstem another port (BRAINSTEM_PORT or server.port)\n`,
      );
      // The parts start only once the server listens: no credentials watcher, no bot, not one log line.
      expect(two.stdout).toBe('');
      expect(tg.calls).toEqual([]);
      expect(one.p.child.exitCode).toBeNull();
    } finally {
      expect(await one.p.stop('SIGTERM')).toBe(0);
      await tg.close();
    }
  });
});

describe('Telegram unreachable at start', () => {
  it('logs each failed getMe with the network\'s reason, not only grammY\'s "Network request failed", and never the bot token', async () => {
    const { start } = setup({}, { withClaude: false });
    // Nothing listens there: the connection is refused.
    const port = await freePort();
    const token = '123456789:AAH-not-a-real-bot-token-0123456789ab';
    const { p } = await start({
      TELEGRAM_BOT_TOKEN: token,
      TELEGRAM_API_ROOT: `http://127.0.0.1:${port}`,
      TELEGRAM_ALLOWED_USERS: '111',
    });
    try {
      const line = JSON.parse(await p.waitForLog((l) => l.includes('Telegram getMe failed; retrying')));
      // Before, the line said only "Network request for 'getMe' failed!": a wrong TELEGRAM_API_ROOT,
      // a firewall and a DNS failure all read the same.
      expect(line.err).toBe(`Network request for 'getMe' failed! (connect ECONNREFUSED 127.0.0.1:${port})`);
      expect(p.logs.join('\n')).not.toContain(token.split(':')[1]);
    } finally {
      expect(await p.stop('SIGTERM')).toBe(0);
    }
  });

  it('a bot token Telegram refuses: the log line that says so keeps what to do, as written to the log', async () => {
    const tg = await startFakeTelegram();
    const { start } = setup({}, { withClaude: false });
    const token = '123456789:AAH-not-the-bot-token-0123456789abcd';
    const { p } = await start({
      TELEGRAM_BOT_TOKEN: token,
      TELEGRAM_API_ROOT: tg.apiRoot,
      TELEGRAM_ALLOWED_USERS: '111',
    });
    try {
      const line = JSON.parse(await p.waitForLog((l) => l.includes('Telegram refused the bot token')));
      // The log's scrubber took "token: check TELEGRAM_BOT_TOKEN …" for a header and its value: the
      // line read "Telegram refused the bot token: [redacted]", what to check gone with the token.
      expect(line.msg).toContain('check TELEGRAM_BOT_TOKEN (telegram.token) against @BotFather');
      expect(line.msg).toContain('the bot stays off until brainstem restarts with a good one');
      expect(p.logs.join('\n')).not.toContain(token.split(':')[1]);
    } finally {
      expect(await p.stop('SIGTERM')).toBe(0);
      await tg.close();
    }
  });
});
