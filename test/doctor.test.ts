import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NEWEST_TESTED, OLDEST_TESTED } from '../brains/claude-code/cli-compat.js';
import { loadApiToken } from '../src/api-token.js';
import { runDoctor } from '../src/commands/doctor.js';
import { openDb } from '../src/db/index.js';
import { type FakeLlama, startFakeLlama } from './fakes/llama.js';
import { CLAUDE_BIN } from './helpers/claude-bin.js';

const BOT_TOKEN = '123456:bot-secret-token-never-printed';
const ACCESS_TOKEN = 'sk-ant-oat01-access-secret-never-printed';

interface Server {
  url: string;
  close(): Promise<void>;
}

/** A tiny HTTP server on 127.0.0.1 standing in for one outside service. */
async function serve(handler: http.RequestListener): Promise<Server> {
  const server = http.createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A URL where nothing listens: a port that was just free. */
async function deadUrl(): Promise<string> {
  const s = await serve(() => undefined);
  await s.close();
  return s.url;
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

async function doctor(env: NodeJS.ProcessEnv): Promise<{ code: number; text: string }> {
  let text = '';
  const code = await runDoctor(env, { write: (s: string) => (text += s) });
  return { code, text };
}

/** The line of one check, e.g. `✗ credentials  …`. */
function line(text: string, name: string): string {
  return text.split('\n').find((l) => l.slice(2).startsWith(`${name} `)) ?? `(no line for ${name})`;
}

describe('brainstem doctor', () => {
  let dir: string;
  let llama: FakeLlama;
  let loadingLlama: FakeLlama;
  let telegramOk: Server;
  let telegramRefusing: Server;

  /** Everything healthy; each test changes one thing. */
  const healthy = (): NodeJS.ProcessEnv => ({
    PATH: process.env.PATH,
    HOME: dir,
    BRAINSTEM_CONFIG: path.join(dir, 'absent.json'),
    BRAINSTEM_DATA_DIR: path.join(dir, 'data'),
    CLAUDE_BIN,
    CLAUDE_CREDENTIALS_FILE: path.join(dir, 'valid-credentials.json'),
    LLAMA_BASE_URL: llama.baseUrl,
    BRAINSTEM_API_TOKEN: 'api-token-for-the-doctor-test',
  });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'brainstem-doctor-'));
    // As /login writes it, with a refresh token unless `renewable` is false.
    const credentials = (expiresAt: number, { renewable = true } = {}) =>
      JSON.stringify({
        claudeAiOauth: {
          accessToken: ACCESS_TOKEN,
          ...(renewable ? { refreshToken: 'sk-ant-ort01-refresh-secret' } : {}),
          expiresAt,
          subscriptionType: 'max',
        },
      });
    writeFileSync(path.join(dir, 'valid-credentials.json'), credentials(Date.now() + 6 * 3_600_000));
    writeFileSync(path.join(dir, 'expired-credentials.json'), credentials(Date.now() - 2 * 3_600_000));
    writeFileSync(
      path.join(dir, 'expired-unrenewable-credentials.json'),
      credentials(Date.now() - 2 * 3_600_000, { renewable: false }),
    );
    llama = await startFakeLlama();
    loadingLlama = await startFakeLlama({ loading: true });
    telegramOk = await serve((req, res) => {
      if (req.url !== `/bot${BOT_TOKEN}/getMe`)
        return json(res, 404, { ok: false, description: 'Not Found' });
      json(res, 200, { ok: true, result: { id: 123456, is_bot: true, username: 'brainstem_test_bot' } });
    });
    telegramRefusing = await serve((_req, res) =>
      json(res, 401, { ok: false, error_code: 401, description: 'Unauthorized' }),
    );
  });

  afterAll(async () => {
    await Promise.all([llama.close(), loadingLlama.close(), telegramOk.close()]);
    await telegramRefusing.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('passes every check on a healthy setup, and prints no secret', async () => {
    const data = path.join(dir, 'healthy-data');
    openDb(data).close(); // a real database, migrated and in WAL mode, as the service leaves it
    const stored = loadApiToken(data, undefined, false).token; // the generated token file (0600)
    const env = {
      ...healthy(),
      BRAINSTEM_DATA_DIR: data,
      BRAINSTEM_API_TOKEN: undefined,
      TELEGRAM_BOT_TOKEN: BOT_TOKEN,
      TELEGRAM_API_ROOT: telegramOk.url,
      TELEGRAM_ALLOWED_USERS: '42',
    };
    const { code, text } = await doctor(env);
    const checks = text.split('\n').filter((l) => /^[✓✗] /.test(l));
    expect(checks.map((l) => l.slice(0, 20))).toEqual([
      '✓ config            ',
      '✓ data dir          ',
      '✓ SQLite            ',
      '✓ claude binary     ',
      '✓ credentials       ',
      '✓ llama upstream    ',
      '✓ Telegram          ',
      '✓ OpenClaw front    ',
      '✓ bind address      ',
      '✓ API token         ',
    ]);
    expect(code).toBe(0);
    expect(line(text, 'claude binary')).toMatch(/\d+\.\d+\.\d+ \(Claude Code\) \(tested\)$/);
    expect(line(text, 'credentials')).toMatch(/left, max plan/);
    expect(line(text, 'SQLite')).toMatch(/WAL, integrity ok/);
    expect(line(text, 'Telegram')).toContain('@brainstem_test_bot');
    expect(line(text, 'API token')).toContain('api-token (mode 600)');
    expect(text).toContain('All 10 checks passed.');
    for (const secret of [stored, BOT_TOKEN, ACCESS_TOKEN]) expect(text).not.toContain(secret);
  });

  it('shows the bot and the OpenClaw front as off, not failed, when they are not configured', async () => {
    const { code, text } = await doctor(healthy());
    expect(line(text, 'OpenClaw front')).toMatch(/^✓ .*off \(telegram\.front\.enabled/);
    expect(line(text, 'Telegram')).toMatch(/^✓ .*off/);
    expect(code).toBe(0);
  });

  it('fails on the OpenClaw front turned on without the bot it comes with, instead of telling to turn it on', async () => {
    const file = path.join(dir, 'front-without-bot.json');
    writeFileSync(file, JSON.stringify({ telegram: { front: { enabled: true } } }));
    const { code, text } = await doctor({ ...healthy(), BRAINSTEM_CONFIG: file });
    expect(line(text, 'OpenClaw front')).toMatch(/^✗ .*telegram\.front\.enabled is true, but the bot is off/);
    expect(text).toContain(
      '→ set TELEGRAM_BOT_TOKEN (or telegram.token), or turn telegram.front.enabled off',
    );
    expect(code).toBe(1);
  });

  it('fails on a bad config field and names it', async () => {
    const file = path.join(dir, 'bad-config.json');
    writeFileSync(file, JSON.stringify({ server: { port: 99_999, prot: 1 } }));
    const { code, text } = await doctor({ ...healthy(), BRAINSTEM_CONFIG: file });
    expect(code).toBe(1);
    expect(text).toMatch(/^✗ config/);
    expect(text).toContain(`${file}: server.port:`);
    // A misspelt field is named as zod names it: no secret follows `key: ` there, nothing is hidden.
    expect(text).toContain(`${file}: server: Unrecognized key: "prot"`);
    expect(text).toContain('→ correct the fields above');
  });

  it('fails on a bot token with quotes around it, as start-up would, its whole line shown and never the token', async () => {
    const { code, text } = await doctor({ ...healthy(), TELEGRAM_BOT_TOKEN: `'${BOT_TOKEN}'` });
    expect(code).toBe(1);
    expect(text).toMatch(/^✗ config/);
    // doctor hides secrets in what it prints: the problem must not read as one ("token: …").
    expect(text).toContain(
      "TELEGRAM_BOT_TOKEN (telegram.token): is not shaped like a bot token (@BotFather's is digits, a colon, then letters, digits, - and _, as in 123456789:AAH…); it has quotes around it, which are not part of it",
    );
    expect(text).not.toContain(BOT_TOKEN.split(':')[1]);
  });

  it('fails on a shortcut naming a tool that does not exist, as start-up would', async () => {
    const file = path.join(dir, 'bad-shortcut.json');
    writeFileSync(file, JSON.stringify({ tools: { shortcuts: { foo: { tool: 'nope' } } } }));
    const { code, text } = await doctor({ ...healthy(), BRAINSTEM_CONFIG: file });
    expect(code).toBe(1);
    expect(text).toMatch(/^✗ config/);
    expect(text).toContain(`${file}: tools.shortcuts.foo.tool: Unknown tool "nope".`);
  });

  it('fails on a mode that lets Claude run a tool that changes things unasked, as start-up would', async () => {
    const file = path.join(dir, 'bad-brainstem-tools.json');
    writeFileSync(
      file,
      JSON.stringify({ modes: { assistant: { kind: 'claude', brainstemTools: ['make_target'] } } }),
    );
    const { code, text } = await doctor({ ...healthy(), BRAINSTEM_CONFIG: file });
    expect(code).toBe(1);
    expect(text).toMatch(/^✗ config/);
    expect(text).toContain(
      `${file}: modes.assistant.brainstemTools: "make_target" can change things, so Claude must ask before each call (read-only tools: git_status,`,
    );
  });

  it('fails on a data dir that cannot be created', async () => {
    const file = path.join(dir, 'a-file');
    writeFileSync(file, 'not a directory');
    const { code, text } = await doctor({ ...healthy(), BRAINSTEM_DATA_DIR: path.join(file, 'data') });
    expect(code).toBe(1);
    expect(line(text, 'data dir')).toMatch(/^✗ .*cannot be created: .*a-file is not a directory/);
    expect(text).toContain('→ set BRAINSTEM_DATA_DIR');
  });

  it('fails on a missing claude binary', async () => {
    const { code, text } = await doctor({ ...healthy(), CLAUDE_BIN: path.join(dir, 'nowhere', 'claude') });
    expect(code).toBe(1);
    expect(line(text, 'claude binary')).toMatch(/^✗ .*nowhere\/claude not found/);
    expect(text).toContain('→ install Claude Code');
  });

  it('fails on a claude that only npm’s script PATH finds, which pm2 would not', async () => {
    const npmBin = path.join(dir, 'project', 'node_modules', '.bin');
    mkdirSync(npmBin, { recursive: true });
    writeFileSync(path.join(npmBin, 'claude'), '#!/bin/sh\necho "2.1.197 (Claude Code)"\n', { mode: 0o755 });
    const { code, text } = await doctor({
      ...healthy(),
      CLAUDE_BIN: undefined,
      // Nothing else on it: a claude installed on this machine must not be found instead.
      PATH: `${npmBin}${path.delimiter}${path.join(dir, 'project')}`,
    });
    expect(code).toBe(1);
    expect(line(text, 'claude binary')).toMatch(
      /^✗ .*claude is found only in .*node_modules\/\.bin, which npm puts on PATH for its scripts/,
    );
    expect(text).toContain(`set CLAUDE_BIN to ${path.join(npmBin, 'claude')}`);
  });

  it('runs claude --version with the environment the service gives the CLI, without its tokens', async () => {
    const dump = path.join(dir, 'claude-environ');
    const bin = path.join(dir, 'claude-env');
    writeFileSync(bin, `#!/bin/sh\nenv > '${dump}'\necho '${NEWEST_TESTED} (Claude Code)'\n`, {
      mode: 0o755,
    });
    const { text } = await doctor({
      ...healthy(),
      CLAUDE_BIN: bin,
      TELEGRAM_BOT_TOKEN: BOT_TOKEN,
      BRAVE_API_KEY: 'brave-secret-key',
      CLAUDE_CONFIG_DIR: path.join(dir, 'claude-config'),
    });
    expect(line(text, 'claude binary')).toMatch(/^✓ /);
    const env = readFileSync(dump, 'utf8');
    expect(env).toContain(`CLAUDE_CONFIG_DIR=${path.join(dir, 'claude-config')}`);
    expect(env).not.toMatch(/bot-secret-token|api-token-for-the-doctor-test|brave-secret-key/);
  });

  it('knows the tested range as the two CLIs the suite installs', () => {
    const version = (dir: string) =>
      (
        JSON.parse(readFileSync(new URL(`../node_modules/${dir}/package.json`, import.meta.url), 'utf8')) as {
          version: string;
        }
      ).version;
    expect([OLDEST_TESTED, NEWEST_TESTED]).toEqual([
      version('@anthropic-ai/claude-code'),
      version('claude-code-current'),
    ]);
  });

  it('fails on a claude older than the oldest tested, and names a newer one', async () => {
    const bin = (name: string, version: string) => {
      const file = path.join(dir, name);
      writeFileSync(file, `#!/bin/sh\necho '${version} (Claude Code)'\n`, { mode: 0o755 });
      return file;
    };
    const old = await doctor({ ...healthy(), CLAUDE_BIN: bin('claude-old', '2.0.76') });
    expect(old.code).toBe(1);
    expect(line(old.text, 'claude binary')).toMatch(
      /^✗ .*claude-old: 2\.0\.76 is older than the oldest Claude Code tested with brainstem \(2\.1\.197\)/,
    );
    expect(old.text).toContain('→ update Claude Code');
    const next = await doctor({ ...healthy(), CLAUDE_BIN: bin('claude-next', '2.2.0') });
    expect(line(next.text, 'claude binary')).toMatch(
      /^✓ .*claude-next: 2\.2\.0 \(Claude Code\) \(newer than the newest tested, 2\.1\.332\)$/,
    );
  });

  it('fails on expired credentials without a refresh token, unless the environment provides them; passes an access token Claude Code renews', async () => {
    const expired = {
      ...healthy(),
      CLAUDE_CREDENTIALS_FILE: path.join(dir, 'expired-unrenewable-credentials.json'),
    };
    const a = await doctor(expired);
    expect(a.code).toBe(1);
    expect(line(a.text, 'credentials')).toMatch(
      /^✗ .*expired 2 h 00 min ago .*, and the file has no refresh token$/,
    );
    expect(a.text).toContain('→ run `claude` on this host and use /login');
    expect(a.text).not.toContain(ACCESS_TOKEN);

    // The same file in the CLAUDE_CONFIG_DIR the CLI is given: a bare `claude` would log in to ~/.claude.
    const configDir = path.join(dir, 'expired-config-dir');
    mkdirSync(configDir, { recursive: true });
    copyFileSync(
      path.join(dir, 'expired-unrenewable-credentials.json'),
      path.join(configDir, '.credentials.json'),
    );
    const { CLAUDE_CREDENTIALS_FILE: _file, ...rest } = expired;
    const inDir = await doctor({ ...rest, CLAUDE_CONFIG_DIR: configDir });
    expect(line(inDir.text, 'credentials')).toMatch(/^✗ .*, and the file has no refresh token$/);
    expect(inDir.text).toContain(
      `→ run \`CLAUDE_CONFIG_DIR=${configDir} claude\` on this host and use /login`,
    );

    // A /login file whose access token aged while no turn ran: Claude Code renews it at the next one.
    const renewable = await doctor({
      ...healthy(),
      CLAUDE_CREDENTIALS_FILE: path.join(dir, 'expired-credentials.json'),
    });
    expect(line(renewable.text, 'credentials')).toMatch(
      /^✓ .*access token expired 2 h 00 min ago .*; Claude Code renews it with its refresh token when it runs$/,
    );
    expect(renewable.code).toBe(0);
    expect(renewable.text).not.toContain(ACCESS_TOKEN);

    const b = await doctor({ ...expired, CLAUDE_CODE_OAUTH_TOKEN: 'oauth-token-from-env' });
    expect(line(b.text, 'credentials')).toMatch(/^✓ .*CLAUDE_CODE_OAUTH_TOKEN is set/);
    expect(b.text).not.toContain('oauth-token-from-env');
    expect(b.code).toBe(0);
  });

  it('takes a mode whose CLAUDE_CONFIG_DIR names the shared folder, spelled otherwise, for the shared login', async () => {
    // claude.env's folder with a trailing "/", and brainstem's ~/.claude written out: the same login.
    const shared = path.join(dir, 'shared-login');
    mkdirSync(shared, { recursive: true });
    const config = path.join(dir, 'same-login-brainstem.json');
    writeFileSync(
      config,
      JSON.stringify({
        claude: { env: { CLAUDE_CONFIG_DIR: shared } },
        modes: {
          slash: { kind: 'claude', description: 'same login', env: { CLAUDE_CONFIG_DIR: `${shared}/` } },
          spelled: {
            kind: 'claude',
            description: 'same login',
            env: { CLAUDE_CONFIG_DIR: `${shared}/../shared-login` },
          },
        },
      }),
    );
    const { text } = await doctor({ ...healthy(), BRAINSTEM_CONFIG: config });
    const lines = text.split('\n').filter((l) => l.slice(2).startsWith('credentials '));
    expect(lines).toHaveLength(1);
    expect(text).not.toContain('mode slash');
    expect(text).not.toContain('mode spelled');
  });

  it('checks the login of a mode’s own CLAUDE_CONFIG_DIR too, on a line naming the mode', async () => {
    const ownDir = path.join(dir, 'own-login');
    mkdirSync(ownDir, { recursive: true });
    copyFileSync(
      path.join(dir, 'expired-unrenewable-credentials.json'),
      path.join(ownDir, '.credentials.json'),
    );
    // A mode with a HOME of its own logs in with that HOME's ~/.claude.
    const ownHome = path.join(dir, 'own-home');
    mkdirSync(path.join(ownHome, '.claude'), { recursive: true });
    copyFileSync(
      path.join(dir, 'expired-unrenewable-credentials.json'),
      path.join(ownHome, '.claude', '.credentials.json'),
    );
    const config = path.join(dir, 'own-login-brainstem.json');
    writeFileSync(
      config,
      JSON.stringify({
        modes: {
          ownlogin: { kind: 'claude', description: 'own login', env: { CLAUDE_CONFIG_DIR: ownDir } },
          ownhome: { kind: 'claude', description: 'own home', env: { HOME: ownHome } },
        },
      }),
    );
    const { code, text } = await doctor({ ...healthy(), BRAINSTEM_CONFIG: config });
    const lines = text.split('\n').filter((l) => l.slice(2).startsWith('credentials '));
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^✓ .*valid-credentials\.json: valid until/);
    expect(lines[1]).toMatch(
      /^✗ credentials +mode ownlogin, own login: .*own-login\/\.credentials\.json: expired 2 h 00 min ago .*, and the file has no refresh token$/,
    );
    expect(text).toContain(`→ run \`CLAUDE_CONFIG_DIR=${ownDir} claude\` on this host and use /login`);
    expect(lines[2]).toMatch(
      /^✗ credentials +mode ownhome, own login: .*own-home\/\.claude\/\.credentials\.json: expired 2 h 00 min ago/,
    );
    expect(text).toContain(
      `→ run \`CLAUDE_CONFIG_DIR=${path.join(ownHome, '.claude')} claude\` on this host`,
    );
    expect(code).toBe(1);
    expect(text).not.toContain(ACCESS_TOKEN);
  });

  it('gives a login command a shell runs as said when the config dir has a space, a quote or a $ in it', async () => {
    // The owner copies it: unquoted, `CLAUDE_CONFIG_DIR=/x/my modes/own claude` ran `modes/own`.
    const ownDir = path.join(dir, "my modes/o'wn $HOME");
    mkdirSync(ownDir, { recursive: true });
    copyFileSync(
      path.join(dir, 'expired-unrenewable-credentials.json'),
      path.join(ownDir, '.credentials.json'),
    );
    const config = path.join(dir, 'spaced-login-brainstem.json');
    writeFileSync(
      config,
      JSON.stringify({
        modes: { spaced: { kind: 'claude', description: 'own login', env: { CLAUDE_CONFIG_DIR: ownDir } } },
      }),
    );
    const { text } = await doctor({ ...healthy(), BRAINSTEM_CONFIG: config });
    const command = /→ run `(.*) claude` on this host and use \/login/.exec(text)?.[1];
    expect(command).toMatch(/^CLAUDE_CONFIG_DIR=/);
    // What a shell gives the `claude` of that command.
    const { stdout } = await promisify(execFile)('/bin/sh', ['-c', `${command} printenv CLAUDE_CONFIG_DIR`]);
    expect(stdout).toBe(`${ownDir}\n`);
  });

  it('says that a credentials file brainstem’s user may not read is another user’s, and how to fix that, rather than to log in again', async (ctx) => {
    // The doctor as the service runs it, from the build, as a user the file is not readable by: as
    // root (who reads every file) the user nobody, for whom the file of the root-owned test folder
    // is another user's; otherwise this user, with a file whose mode keeps everyone out.
    const root = process.getuid?.() === 0;
    const file = path.join(dir, root ? 'valid-credentials.json' : 'mode-000-credentials.json');
    if (!root) {
      copyFileSync(path.join(dir, 'valid-credentials.json'), file);
      chmodSync(file, 0o000);
    }
    const as = root ? { uid: 65534, gid: 65534 } : {};
    const run = (args: string[], env: NodeJS.ProcessEnv): Promise<{ stdout: string; failed: boolean }> =>
      promisify(execFile)(process.execPath, args, { ...as, env, cwd: '/' }).then(
        ({ stdout }) => ({ stdout, failed: false }),
        (e: { stdout?: string }) => ({ stdout: e.stdout ?? '', failed: true }),
      );
    // A node that user may not run (installed under root's home): nothing to learn here.
    if (root && (await run(['-e', ''], {})).failed) ctx.skip();
    const { stdout } = await run([path.resolve('dist/src/main.js'), 'doctor'], {
      ...healthy(),
      CLAUDE_CREDENTIALS_FILE: file,
    });
    expect(line(stdout, 'credentials')).toMatch(
      /^✗ .*: .+, the user brainstem runs as, may not read the file \(EACCES\): it belongs to another user/,
    );
    const hint = stdout.split('\n')[stdout.split('\n').indexOf(line(stdout, 'credentials')) + 1];
    expect(hint).toMatch(/→ log in as .+, the user brainstem and the Claude Code it starts run as/);
    expect(stdout).not.toContain('log in again');
    expect(stdout).not.toContain(ACCESS_TOKEN);
  });

  it('fails when the llama upstream is down', async () => {
    const { code, text } = await doctor({ ...healthy(), LLAMA_BASE_URL: `${await deadUrl()}/v1` });
    expect(code).toBe(1);
    expect(line(text, 'llama upstream')).toMatch(/^✗ .*\/health not reachable \(.*ECONNREFUSED/);
    expect(text).toContain('→ start llama-server');
    // A URL with credentials (llama-server behind a proxy) is named without them.
    const dead = new URL(await deadUrl());
    const secret = await doctor({ ...healthy(), LLAMA_BASE_URL: `http://u:SECRETPW@${dead.host}/v1` });
    expect(line(secret.text, 'llama upstream')).toContain(
      `http://[redacted]@${dead.host}/health not reachable`,
    );
    expect(secret.text).not.toContain('SECRETPW');
  });

  it('passes a llama upstream that is down when brainstem starts its models itself on a switch (llama.models)', async () => {
    const file = path.join(dir, 'swap-config.json');
    const start = (unit: string) => [['systemctl', 'start', unit]];
    writeFileSync(
      file,
      JSON.stringify({
        modes: {
          local: { kind: 'llama', llamaModel: 'qwen' },
          coder: { kind: 'llama', llamaModel: 'coder' },
        },
        llama: { models: { qwen: { start: start('llama-qwen') }, coder: { start: start('llama-coder') } } },
      }),
    );
    const dead = `${await deadUrl()}/v1`;
    const { code, text } = await doctor({ ...healthy(), BRAINSTEM_CONFIG: file, LLAMA_BASE_URL: dead });
    expect(line(text, 'llama upstream')).toMatch(
      /^✓ .*\/health not reachable: no model loaded now; brainstem starts one on a switch \(llama\.models\); modes local, coder$/,
    );
    expect(code).toBe(0);
    // A mode whose model nothing starts still needs its server up.
    writeFileSync(
      file,
      JSON.stringify({
        modes: { local: { kind: 'llama', llamaModel: 'qwen' }, coder: { kind: 'llama' } },
        llama: { models: { qwen: { start: start('llama-qwen') } } },
      }),
    );
    const mixed = await doctor({ ...healthy(), BRAINSTEM_CONFIG: file, LLAMA_BASE_URL: dead });
    expect(line(mixed.text, 'llama upstream')).toMatch(/^✗ .*not reachable/);
    expect(mixed.code).toBe(1);
  });

  it('tells Ollama (no /health) by its model list: passes when it has the mode’s model, else says to `ollama pull` it', async () => {
    const ollama = await startFakeLlama({ ollama: { models: ['qwen2.5:7b'] } });
    try {
      const file = path.join(dir, 'ollama-config.json');
      const withModel = (model: string) =>
        writeFileSync(file, JSON.stringify({ modes: { local: { kind: 'llama', model } } }));
      const env = { ...healthy(), BRAINSTEM_CONFIG: file, LLAMA_BASE_URL: ollama.baseUrl };
      withModel('qwen2.5:7b');
      const pulled = await doctor(env);
      expect(line(pulled.text, 'llama upstream')).toMatch(/^✓ .* is Ollama and has qwen2\.5:7b; mode local$/);
      withModel('llama3.2-vision:11b');
      const missing = await doctor(env);
      expect(missing.code).toBe(1);
      expect(line(missing.text, 'llama upstream')).toMatch(
        /^✗ .* is Ollama \(it has qwen2\.5:7b\); mode local names llama3\.2-vision:11b, not pulled$/,
      );
      expect(missing.text).toContain('→ run `ollama pull llama3.2-vision:11b`');
      // One Ollama written two ways (localhost, no /v1) is one server: checked once, with both modes.
      writeFileSync(
        file,
        JSON.stringify({
          modes: {
            local: { kind: 'llama', model: 'qwen2.5:7b' },
            again: {
              kind: 'llama',
              model: 'qwen2.5:7b',
              baseUrl: ollama.url.replace('127.0.0.1', 'localhost'),
            },
          },
        }),
      );
      const twice = await doctor(env);
      expect(twice.text.split('\n').filter((l) => l.includes('llama upstream'))).toHaveLength(1);
      expect(line(twice.text, 'llama upstream')).toMatch(
        /^✓ .* is Ollama and has qwen2\.5:7b; modes local, again$/,
      );
    } finally {
      await ollama.close();
    }
  });

  it('fails while the llama upstream is loading its model (503 on /health)', async () => {
    const { code, text } = await doctor({ ...healthy(), LLAMA_BASE_URL: loadingLlama.baseUrl });
    expect(code).toBe(1);
    expect(line(text, 'llama upstream')).toMatch(/^✗ .*answers 503: the model is still loading; mode local/);
  });

  it('fails when Telegram refuses the bot token, without printing it', async () => {
    const { code, text } = await doctor({
      ...healthy(),
      TELEGRAM_BOT_TOKEN: BOT_TOKEN,
      TELEGRAM_API_ROOT: telegramRefusing.url,
      TELEGRAM_ALLOWED_USERS: '42',
    });
    expect(code).toBe(1);
    expect(line(text, 'Telegram')).toMatch(/^✗ .*getMe refused the bot token \(HTTP 401: Unauthorized\)/);
    expect(text).toContain('→ check TELEGRAM_BOT_TOKEN');
    expect(text).not.toContain(BOT_TOKEN);
    expect(text).not.toContain('bot-secret');
  });

  it('fails with nobody allowed, naming both places the allow-list is set', async () => {
    const { code, text } = await doctor({
      ...healthy(),
      TELEGRAM_BOT_TOKEN: BOT_TOKEN,
      TELEGRAM_API_ROOT: telegramOk.url,
    });
    expect(code).toBe(1);
    expect(line(text, 'Telegram')).toMatch(/^✗ .*its allow-list is empty, so it refuses everybody/);
    expect(text).toContain('→ set TELEGRAM_ALLOWED_USERS');
    expect(text).toContain(`"telegram": { "allowedUsers": [<id>] } in ${path.join(dir, 'absent.json')}`);
  });

  it('fails on a bind address that is not loopback, with a warning', async () => {
    const { code, text } = await doctor({ ...healthy(), BRAINSTEM_HOST: '0.0.0.0' });
    expect(code).toBe(1);
    expect(line(text, 'bind address')).toMatch(/^✗ bind address +0\.0\.0\.0:9090 is not loopback/);
    expect(text).toContain('→ set BRAINSTEM_HOST=127.0.0.1');
  });

  it('says where the API token is set, the environment or the config file, never the token', async () => {
    const fromEnv = await doctor(healthy());
    expect(line(fromEnv.text, 'API token')).toMatch(/^✓ API token +set by BRAINSTEM_API_TOKEN$/);
    const file = path.join(dir, 'token-config.json');
    const token = 'api-token-from-the-config-file';
    writeFileSync(file, JSON.stringify({ server: { apiToken: token } }));
    const fromFile = await doctor({ ...healthy(), BRAINSTEM_CONFIG: file, BRAINSTEM_API_TOKEN: undefined });
    expect(/^✓ API token +set by server\.apiToken in (.+)$/.exec(line(fromFile.text, 'API token'))?.[1]).toBe(
      file,
    );
    for (const { text } of [fromEnv, fromFile]) {
      expect(text).not.toContain(token);
      expect(text).not.toContain('api-token-for-the-doctor-test');
    }
  });

  it('passes before the first start, which makes the API token', async () => {
    const data = path.join(dir, 'fresh-data');
    mkdirSync(data);
    const { code, text } = await doctor({
      ...healthy(),
      BRAINSTEM_DATA_DIR: data,
      BRAINSTEM_API_TOKEN: undefined,
    });
    expect(line(text, 'API token')).toMatch(/^✓ API token +none yet: the first start generates one in /);
    expect(code).toBe(0);
  });
});
