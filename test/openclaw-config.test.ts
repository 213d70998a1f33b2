import {
  chmodSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import JSON5 from 'json5';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runOpenclawConfig } from '../src/commands/openclaw-config.js';
import { startFakeLlama } from './fakes/llama.js';
import { runAlone } from './helpers/procs.js';

const TOKEN = 'bst_test-token-for-openclaw-config';
/** OpenClaw's own reference to an environment variable, written as is in openclaw.json. */
// biome-ignore lint/suspicious/noTemplateCurlyInString: OpenClaw's ${VAR} syntax, meant literally
const TOKEN_REF = '${BRAINSTEM_TOKEN}';

/** An openclaw.json as a user has it: other providers, an agent, channels, gateway settings. */
const sample = {
  gateway: { port: 18789, auth: { mode: 'token', token: 'gw-token' } },
  models: {
    mode: 'merge',
    providers: {
      ollama: { baseUrl: 'http://127.0.0.1:11434/v1', api: 'openai-completions', models: [{ id: 'qwen3' }] },
      brainstem: {
        baseUrl: 'http://old-host:1/v1',
        apiKey: 'stale',
        models: [
          { id: 'gone' },
          // The owner's own fields on a mode's model, kept; brainstem's own ones are brainstem's.
          {
            id: 'anklume',
            reasoning: true,
            cost: { input: 0 },
            compat: { supportsTools: true },
            input: ['text'],
          },
          'junk',
        ],
        headers: { x: '1' },
      },
    },
  },
  agents: {
    defaults: {
      workspace: '~/.openclaw/workspace',
      model: { primary: 'ollama/qwen3', fallbacks: ['ollama/qwen3'] },
      models: { 'ollama/qwen3': { alias: 'qwen' } },
    },
    list: [{ id: 'main' }],
  },
  channels: {
    telegram: { enabled: true, botToken: 'tg-token', dmPolicy: 'pairing' },
    discord: { enabled: true },
  },
};

/** What the built-in `local` mode (no contextWindow) makes openclaw-config say. */
const LOCAL_SIZE_NOTE =
  "modes.local.contextWindow is not set and llama-server at http://127.0.0.1:1/v1 did not say (GET /props; Ollama has none): OpenClaw takes the model for a 200000-token one, so a long conversation reaches the model's own limit before OpenClaw compacts it; set it to llama-server's --ctx-size (per slot)\n";

/** What `--apply` says of the sample's brainstem models that are no longer modes. */
const SAMPLE_DROPPED_NOTE =
  'models.providers.brainstem.models: dropped gone, 1 entry without an id, no longer a brainstem mode (brainstem would refuse them); the backup keeps them\n';

type Parsed = null | boolean | number | string | Parsed[] | { [key: string]: Parsed };

/** OpenClaw's merge of `$include`s: objects key by key, arrays concatenated, anything else replaced. */
function includeMerge(base: Parsed, top: Parsed): Parsed {
  if (Array.isArray(base) && Array.isArray(top)) return [...base, ...top];
  if (typeof base !== 'object' || base === null || Array.isArray(base)) return top;
  if (typeof top !== 'object' || top === null || Array.isArray(top)) return top;
  const out = { ...base };
  for (const [k, v] of Object.entries(top)) out[k] = k in out ? includeMerge(out[k] as Parsed, v) : v;
  return out;
}

/**
 * openclaw.json as OpenClaw reads it, by the `$include` rules its docs give
 * (docs/gateway/config-secrets-env.md): one file replaces the object, a list
 * of files is deep-merged in order, the keys beside `$include` are merged
 * over it, paths are relative to the including file.
 */
function openclawReads(file: string): ReturnType<typeof JSON.parse> {
  const resolve = (v: Parsed, base: string): Parsed => {
    if (Array.isArray(v)) return v.map((x) => resolve(x, base));
    if (typeof v !== 'object' || v === null) return v;
    const { $include, ...rest } = v;
    const inner = Object.fromEntries(Object.entries(rest).map(([k, x]) => [k, resolve(x, base)]));
    if ($include === undefined) return inner;
    const load = (name: Parsed): Parsed => {
      const at = path.resolve(path.dirname(base), String(name));
      return resolve(JSON5.parse(readFileSync(at, 'utf8')), at);
    };
    const included = Array.isArray($include) ? $include.map(load).reduce(includeMerge, {}) : load($include);
    return Object.keys(rest).length ? includeMerge(included, inner) : included;
  };
  // Read as the tests read a written openclaw.json (JSON.parse's untyped value).
  return JSON.parse(JSON.stringify(resolve(JSON5.parse(readFileSync(file, 'utf8')), file)));
}

interface Captured {
  code: number;
  out: string;
  err: string;
}

describe('brainstem openclaw-config', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;

  const run = async (args: string[]): Promise<Captured> => {
    let out = '';
    let err = '';
    const code = await runOpenclawConfig(
      args,
      env,
      { write: (s: string) => (out += s) },
      { write: (s: string) => (err += s) },
    );
    return { code, out, err };
  };

  /** `--apply` of `content`, written as the owner's openclaw.json, with the front on and a bot token. */
  const applyWithFront = (file: string, content: unknown): Promise<Captured> => {
    writeFileSync(file, JSON.stringify(content), { mode: 0o600 });
    writeFileSync(env.BRAINSTEM_CONFIG ?? '', JSON.stringify({ telegram: { front: { enabled: true } } }));
    env.TELEGRAM_BOT_TOKEN = '123:bot-token';
    return run(['--apply', file]);
  };

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'brainstem-openclaw-'));
    env = {
      HOME: dir,
      BRAINSTEM_CONFIG: path.join(dir, 'absent.json'),
      BRAINSTEM_DATA_DIR: path.join(dir, 'data'),
      BRAINSTEM_API_TOKEN: TOKEN,
      BRAINSTEM_PORT: '9191',
      // Where nothing listens: no llama-server to ask for its context.
      LLAMA_BASE_URL: 'http://127.0.0.1:1/v1',
    };
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('prints the provider block with the token, the active model and every mode', async () => {
    const { code, out, err } = await run([]);
    expect(code).toBe(0);
    expect(err).toBe(LOCAL_SIZE_NOTE);
    const block = JSON.parse(out);
    expect(block.models.providers.brainstem).toMatchObject({
      baseUrl: 'http://127.0.0.1:9191/v1',
      apiKey: TOKEN,
      api: 'openai-completions',
    });
    expect(block.models.providers.brainstem.models.map((m: { id: string }) => m.id)).toEqual([
      'active',
      'anklume',
      'assistant',
      'local',
    ]);
    expect(block.agents.defaults.model.primary).toBe('brainstem/active');
    // No bot token in brainstem: OpenClaw's Telegram channel is none of its business.
    expect(block.channels).toBeUndefined();
  });

  it('declares which models take images, so OpenClaw sends a chat’s photos to the ones that see them', async () => {
    const inputs = async (modes: Record<string, unknown>) => {
      writeFileSync(env.BRAINSTEM_CONFIG ?? '', JSON.stringify({ defaultMode: 'local', modes }));
      const { code, out } = await run([]);
      expect(code).toBe(0);
      const models = JSON.parse(out).models.providers.brainstem.models as { id: string; input: string[] }[];
      return Object.fromEntries(models.map((m) => [m.id, m.input]));
    };
    // The built-in Claude modes replaced by llama modes, none with vision: no model takes photos.
    const llamaOnly = { assistant: { kind: 'llama' }, anklume: { kind: 'llama' }, local: { kind: 'llama' } };
    expect(await inputs(llamaOnly)).toEqual({
      active: ['text'],
      anklume: ['text'],
      assistant: ['text'],
      local: ['text'],
    });
    // A vision model on llama-server takes them, and so then does `active`.
    expect(await inputs({ ...llamaOnly, eyes: { kind: 'llama', vision: true } })).toEqual({
      active: ['text', 'image'],
      anklume: ['text'],
      assistant: ['text'],
      eyes: ['text', 'image'],
      local: ['text'],
    });
  });

  it('keeps a model name with emoji within what OpenClaw’s Telegram picker shows whole (UTF-16 units)', async () => {
    // The picker cuts a name longer than 38 JavaScript characters (UTF-16 units) at its start: an
    // emoji is two of them, so a name of 38 code points with emoji would lose its mode.
    const nameOf = async (description: string) => {
      writeFileSync(
        env.BRAINSTEM_CONFIG ?? '',
        JSON.stringify({ modes: { maison: { kind: 'llama', contextWindow: 8192, description } } }),
      );
      const { code, out } = await run([]);
      expect(code).toBe(0);
      const models = JSON.parse(out).models.providers.brainstem.models as { id: string; name: string }[];
      return models.find((m) => m.id === 'maison')?.name ?? '';
    };
    expect(await nameOf('🏠 maison 🤖 assistant 📅 agenda 📬 courrier')).toBe(
      'maison: 🏠 maison 🤖 assistant 📅 age…',
    );
    // The cut falls before an emoji that would straddle it, never inside it (a lone surrogate).
    const straddling = await nameOf(`${'x'.repeat(28)}🏠🏠`);
    expect(straddling).toBe(`maison: ${'x'.repeat(28)}…`);
    expect(straddling.length).toBeLessThanOrEqual(38);
  });

  it('gives each model its context and answer sizes, so OpenClaw compacts before a local model refuses', async () => {
    writeFileSync(
      env.BRAINSTEM_CONFIG ?? '',
      JSON.stringify({
        defaultMode: 'assistant',
        modes: {
          local: { kind: 'llama', contextWindow: 16384 },
          small: { kind: 'llama', contextWindow: 4096 },
          big: { kind: 'claude', contextWindow: 1_000_000 },
        },
      }),
    );
    const { code, out, err } = await run([]);
    expect(code).toBe(0);
    // Every llama mode has its size now: nothing to say.
    expect(err).toBe('');
    const models = JSON.parse(out).models.providers.brainstem.models as Record<string, unknown>[];
    const sizes = Object.fromEntries(models.map((m) => [m.id, [m.contextWindow, m.maxTokens]]));
    expect(sizes).toEqual({
      // The default mode's: OpenClaw cannot know which mode is active.
      active: [200_000, 32_000],
      anklume: [200_000, 32_000],
      assistant: [200_000, 32_000],
      big: [1_000_000, 32_000],
      // A quarter of the context for the answer, at most OpenClaw's own 8192.
      local: [16384, 4096],
      small: [4096, 1024],
    });

    // A llama mode without its size gets none (OpenClaw's default), and the user is told.
    writeFileSync(env.BRAINSTEM_CONFIG ?? '', JSON.stringify({ defaultMode: 'local' }));
    const unsized = await run([]);
    expect(unsized.err).toBe(LOCAL_SIZE_NOTE);
    const local = JSON.parse(unsized.out).models.providers.brainstem.models.filter(
      (m: { id: string }) => m.id === 'local' || m.id === 'active',
    );
    expect(local).toHaveLength(2);
    for (const m of local) expect(m).not.toHaveProperty('contextWindow');
  });

  it('asks llama-server for a llama mode’s context when it is not set, when the loaded model is surely the mode’s', async () => {
    const llama = await startFakeLlama({ contextTokens: 6000 });
    try {
      env.LLAMA_BASE_URL = llama.baseUrl;
      writeFileSync(env.BRAINSTEM_CONFIG ?? '', JSON.stringify({ defaultMode: 'local' }));
      const asked = await run([]);
      expect(asked.code).toBe(0);
      expect(asked.err).toBe(
        `modes.local: a context of 6000 tokens, as llama-server at ${llama.baseUrl} says (/props; modes.local.contextWindow overrides it)\n`,
      );
      const models = JSON.parse(asked.out).models.providers.brainstem.models as Record<string, unknown>[];
      const sizes = Object.fromEntries(models.map((m) => [m.id, [m.contextWindow, m.maxTokens]]));
      expect(sizes.local).toEqual([6000, 1500]);
      expect(sizes.active).toEqual([6000, 1500]);

      // Two models swapped on one server: the one loaded may be another mode's, so none is asked.
      const swap = { start: [['true']], stop: [['true']] };
      writeFileSync(
        env.BRAINSTEM_CONFIG ?? '',
        JSON.stringify({
          defaultMode: 'local',
          llama: { models: { small: swap, big: swap } },
          modes: {
            local: { kind: 'llama', llamaModel: 'small' },
            other: { kind: 'llama', llamaModel: 'big' },
          },
        }),
      );
      const before = llama.requests.length;
      const swapped = await run([]);
      expect(swapped.err).toContain(
        "modes.local.contextWindow is not set and brainstem cannot ask llama-server, which may have another mode's model loaded",
      );
      expect(llama.requests.length).toBe(before);
      const swappedModels = JSON.parse(swapped.out).models.providers.brainstem.models as Record<
        string,
        unknown
      >[];
      expect(swappedModels.find((m) => m.id === 'local')).not.toHaveProperty('contextWindow');
    } finally {
      await llama.close();
    }
  });

  it('keeps OpenClaw’s Telegram channel on the same token, its Bot API root on brainstem’s front', async () => {
    const file = path.join(dir, 'openclaw.json');
    const { code, out, err } = await applyWithFront(file, sample);
    expect(code).toBe(0);
    expect(err).toBe(LOCAL_SIZE_NOTE + SAMPLE_DROPPED_NOTE);
    expect(out).not.toContain('bot-token');
    expect(JSON.parse(readFileSync(file, 'utf8')).channels.telegram).toEqual({
      enabled: true,
      botToken: '123:bot-token',
      apiRoot: 'http://127.0.0.1:9191/telegram',
      dmPolicy: 'pairing',
    });
  });

  it('--apply points the account of brainstem’s bot at the front when openclaw.json lists accounts, without a second account on its token', async () => {
    const file = path.join(dir, 'openclaw.json');
    const front = 'http://127.0.0.1:9191/telegram';
    // OpenClaw's multi-account form, with what an older brainstem wrote on the channel itself.
    const other = { botToken: '456:other-bot', allowFrom: ['111'] };
    const accounts = {
      ...sample,
      channels: {
        ...sample.channels,
        telegram: {
          enabled: true,
          dmPolicy: 'pairing',
          botToken: '123:bot-token',
          apiRoot: front,
          accounts: { work: { botToken: '123:bot-token', allowFrom: ['112'] }, other },
        },
      },
    };
    const { code, err } = await applyWithFront(file, accounts);
    expect(code).toBe(0);
    expect(err).toBe(
      LOCAL_SIZE_NOTE +
        'channels.telegram.botToken removed: it is channels.telegram.accounts.work\'s bot token too, and made OpenClaw run a second account "default" on that bot\n' +
        "channels.telegram.apiRoot removed: every account takes it, another bot's too, which brainstem's front refuses (it is set on the account of brainstem's bot instead)\n" +
        `channels.telegram.accounts.work has brainstem's bot token: its apiRoot is brainstem's front, ${front}\n` +
        SAMPLE_DROPPED_NOTE,
    );
    // One account per bot: `work` on the front, the other bot's untouched, off the front.
    expect(JSON.parse(readFileSync(file, 'utf8')).channels.telegram).toEqual({
      enabled: true,
      dmPolicy: 'pairing',
      accounts: {
        work: { botToken: '123:bot-token', allowFrom: ['112'], enabled: true, apiRoot: front },
        other,
      },
    });
    expect((await run(['--apply', file])).out).toContain('nothing changed');

    // The bot's token on the channel itself, the only account an other bot's: the account OpenClaw
    // makes of the channel's token ("default") gets the front, not every account.
    const implicit = {
      ...sample,
      channels: { telegram: { botToken: '123:bot-token', dmPolicy: 'pairing', accounts: { other } } },
    };
    writeFileSync(file, JSON.stringify(implicit), { mode: 0o600 });
    const second = await run(['--apply', file]);
    expect(second.code).toBe(0);
    expect(second.err).toContain(
      `channels.telegram.accounts.default has brainstem's bot token: its apiRoot is brainstem's front, ${front}\n`,
    );
    expect(JSON.parse(readFileSync(file, 'utf8')).channels.telegram).toEqual({
      botToken: '123:bot-token',
      dmPolicy: 'pairing',
      accounts: { other, default: { enabled: true, apiRoot: front } },
    });
  });

  it('--apply says which account to point at the front when it cannot tell, and turns off only the bot’s account with the front off', async () => {
    const file = path.join(dir, 'openclaw.json');
    const ref = { botToken: TOKEN_REF };
    const unsure = await applyWithFront(file, {
      ...sample,
      channels: { telegram: { enabled: true, accounts: { a: ref, b: { botToken: '456:other' } } } },
    });
    expect(unsure.code).toBe(0);
    expect(unsure.err).toContain(
      "no account of channels.telegram.accounts is known to have brainstem's bot token (a give theirs as a reference or a file brainstem cannot read): give the one that has its apiRoot http://127.0.0.1:9191/telegram\n",
    );
    expect(unsure.err).toContain(
      `channels.telegram.accounts.a.botToken names ${TOKEN_REF}, set neither in brainstem's environment nor in ${path.join(dir, '.openclaw', '.env')} or ${path.join(dir, '.config', 'openclaw', 'gateway.env')} nor in openclaw.json's env: brainstem cannot tell which bot it is (OpenClaw's gateway may have it in its own environment)\n`,
    );
    const untouched = JSON.parse(readFileSync(file, 'utf8')).channels.telegram;
    expect(untouched).toEqual({ enabled: true, accounts: { a: ref, b: { botToken: '456:other' } } });
    expect(readFileSync(file, 'utf8')).not.toContain('bot-token');

    // The front off: brainstem alone polls its bot, so its account is off; the other bot's stays on.
    writeFileSync(
      file,
      JSON.stringify({
        ...sample,
        channels: {
          telegram: {
            enabled: true,
            accounts: { a: { botToken: '123:bot-token' }, b: { botToken: '456:other' } },
          },
        },
      }),
      { mode: 0o600 },
    );
    writeFileSync(env.BRAINSTEM_CONFIG ?? '', JSON.stringify({}));
    const off = await run(['--apply', file]);
    expect(off.code).toBe(0);
    expect(off.err).toContain(
      "channels.telegram.accounts.a has brainstem's bot token: turned off, as brainstem alone polls the bot\n",
    );
    expect(JSON.parse(readFileSync(file, 'utf8')).channels.telegram).toEqual({
      enabled: true,
      accounts: { a: { botToken: '123:bot-token', enabled: false }, b: { botToken: '456:other' } },
    });
  });

  it('--apply finds brainstem’s bot in an account whose tokenFile starts with ~, which OpenClaw reads from the home directory', async () => {
    const file = path.join(dir, 'openclaw.json');
    // As OpenClaw's docs and its setup write it; HOME is the test's directory.
    writeFileSync(path.join(dir, 'tg-token'), '123:bot-token\n', { mode: 0o600 });
    const front = 'http://127.0.0.1:9191/telegram';
    const { code, err } = await applyWithFront(file, {
      ...sample,
      channels: {
        telegram: { accounts: { main: { tokenFile: '~/tg-token' }, other: { botToken: '456:other' } } },
      },
    });
    expect(code).toBe(0);
    expect(err).toContain(
      `channels.telegram.accounts.main has brainstem's bot token: its apiRoot is brainstem's front, ${front}\n`,
    );
    expect(JSON.parse(readFileSync(file, 'utf8')).channels.telegram).toEqual({
      accounts: {
        main: { tokenFile: '~/tg-token', enabled: true, apiRoot: front },
        other: { botToken: '456:other' },
      },
    });
  });

  it('--apply reads a relative tokenFile from the home directory, where OpenClaw’s gateway service runs, not from brainstem’s', async () => {
    const file = path.join(dir, 'openclaw.json');
    // OpenClaw resolves it against its gateway's working directory: its systemd user unit sets
    // none, so the home directory (the test's directory here); brainstem runs elsewhere.
    mkdirSync(path.join(dir, 'secrets'));
    writeFileSync(path.join(dir, 'secrets', 'tg-token'), '123:bot-token\n', { mode: 0o600 });
    expect(process.cwd()).not.toBe(dir);
    const front = 'http://127.0.0.1:9191/telegram';
    const { code, err } = await applyWithFront(file, {
      ...sample,
      channels: {
        telegram: {
          accounts: { main: { tokenFile: 'secrets/tg-token' }, other: { botToken: '456:other' } },
        },
      },
    });
    expect(code).toBe(0);
    expect(err).toContain(
      `channels.telegram.accounts.main.tokenFile "secrets/tg-token" is relative: OpenClaw resolves it against its gateway's working directory, the home directory for the service it installs (its systemd unit sets none), so it was taken as ${path.join(dir, 'secrets', 'tg-token')}; an absolute path or ~/… names it whatever the directory\n`,
    );
    expect(err).toContain(
      `channels.telegram.accounts.main has brainstem's bot token: its apiRoot is brainstem's front, ${front}\n`,
    );
    expect(JSON.parse(readFileSync(file, 'utf8')).channels.telegram).toEqual({
      accounts: {
        main: { tokenFile: 'secrets/tg-token', enabled: true, apiRoot: front },
        other: { botToken: '456:other' },
      },
    });
  });

  it('keeps a secret the file gives as a reference (an environment variable, a SecretRef) instead of writing the value in its place', async () => {
    const file = path.join(dir, 'openclaw.json');
    const botRef = { source: 'env', provider: 'default', id: 'TELEGRAM_BOT_TOKEN' };
    const withRefs = {
      ...sample,
      models: {
        ...sample.models,
        providers: { ...sample.models.providers, brainstem: { apiKey: TOKEN_REF } },
      },
      channels: { ...sample.channels, telegram: { ...sample.channels.telegram, botToken: botRef } },
    };
    const { code, err } = await applyWithFront(file, withRefs);
    expect(code).toBe(0);
    expect(err).toBe(
      LOCAL_SIZE_NOTE +
        `models.providers.brainstem.apiKey is kept as ${TOKEN_REF}: OpenClaw must resolve it to brainstem's API token\n` +
        "channels.telegram.botToken is kept as a secret reference: OpenClaw must resolve it to brainstem's bot token\n",
    );
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain('bot-token');
    const merged = JSON.parse(text);
    expect(merged.models.providers.brainstem.apiKey).toBe(TOKEN_REF);
    expect(merged.models.providers.brainstem.baseUrl).toBe('http://127.0.0.1:9191/v1');
    expect(merged.channels.telegram).toMatchObject({
      botToken: botRef,
      apiRoot: 'http://127.0.0.1:9191/telegram',
    });
  });

  it('keeps the bot token out of openclaw.json when the file reads it from a file (tokenFile)', async () => {
    const file = path.join(dir, 'openclaw.json');
    const tokenFile = path.join(dir, 'telegram-token');
    // OpenClaw reads channels.telegram.tokenFile before botToken: the token the owner kept in a file stays there.
    const withFile = {
      ...sample,
      channels: { ...sample.channels, telegram: { enabled: true, tokenFile, dmPolicy: 'pairing' } },
    };
    const { code, err } = await applyWithFront(file, withFile);
    expect(code).toBe(0);
    expect(err).toBe(
      LOCAL_SIZE_NOTE +
        "channels.telegram.botToken is not written: the file reads the bot token from channels.telegram.tokenFile, which must hold brainstem's bot token\n" +
        SAMPLE_DROPPED_NOTE,
    );
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain('bot-token');
    expect(JSON.parse(text).channels.telegram).toEqual({
      enabled: true,
      tokenFile,
      dmPolicy: 'pairing',
      apiRoot: 'http://127.0.0.1:9191/telegram',
    });
  });

  it('--apply leaves openclaw.json and its backup readable by their owner only, as OpenClaw writes it', async () => {
    const file = path.join(dir, 'openclaw.json');
    // Left 0644 by a hand edit or an umask: the file now holds brainstem's API token and the bot token.
    writeFileSync(file, JSON.stringify(sample));
    chmodSync(file, 0o644);
    const { code, err } = await run(['--apply', file]);
    expect(code).toBe(0);
    expect(err).toContain(
      `${file} was readable by others (mode 644); written 600, as OpenClaw writes it, since it holds brainstem's API token\n`,
    );
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const backups = readdirSync(dir).filter((f) => f.includes('.bak-'));
    expect(backups).toHaveLength(1);
    expect(statSync(path.join(dir, backups[0] ?? '')).mode & 0o777).toBe(0o600);
  });

  it('turns OpenClaw’s Telegram channel off when brainstem polls the bot without the front, and says why', async () => {
    env.TELEGRAM_BOT_TOKEN = '123:bot-token';
    const { code, out, err } = await run([]);
    expect(code).toBe(0);
    expect(JSON.parse(out).channels.telegram).toEqual({ enabled: false });
    expect(err).toMatch(/telegram\.front\.enabled is off/);
  });

  it('generates and keeps the API token when none exists yet, and says where (not what)', async () => {
    env.BRAINSTEM_API_TOKEN = undefined;
    const first = await run([]);
    const token = JSON.parse(first.out).models.providers.brainstem.apiKey as string;
    expect(token).toMatch(/^bst_/);
    expect(first.err).toContain(`generated the API token in ${path.join(dir, 'data', 'api-token')}`);
    expect(first.err).not.toContain(token);
    const second = await run([]);
    expect(JSON.parse(second.out).models.providers.brainstem.apiKey).toBe(token);
    expect(second.err).toBe(LOCAL_SIZE_NOTE);
  });

  it('--apply merges into an existing openclaw.json, keeping its other settings and a backup', async () => {
    const file = path.join(dir, 'openclaw.json');
    const original = `${JSON.stringify(sample, null, 2)}\n`;
    writeFileSync(file, original, { mode: 0o600 });

    const { code, out, err } = await run(['--apply', file]);
    expect(code).toBe(0);
    expect(err).toBe(LOCAL_SIZE_NOTE + SAMPLE_DROPPED_NOTE);
    expect(out).toContain(`merged the brainstem provider into ${file}`);
    expect(out).not.toContain(TOKEN);

    const written = readFileSync(file, 'utf8');
    const merged = JSON.parse(written);
    // Whole: the JSON and its last newline (fsynced before the rename; a power loss is not tested).
    expect(written).toBe(`${JSON.stringify(merged, null, 2)}\n`);
    // Asked of OpenClaw on every model: its session id as a header, and usage in every stream.
    const compat = { sendSessionAffinityHeaders: true, supportsUsageInStreaming: true };
    const claude = { contextWindow: 200_000, maxTokens: 32_000 };
    // brainstem's part
    expect(merged.models.providers.brainstem).toEqual({
      baseUrl: 'http://127.0.0.1:9191/v1',
      apiKey: TOKEN,
      api: 'openai-completions',
      headers: { x: '1', 'x-brainstem-client': 'openclaw' }, // the user's own header stays
      models: [
        // The mode first, 38 characters at most: OpenClaw's Telegram picker keeps a longer name's end.
        {
          id: 'active',
          name: 'active: the mode brainstem runs now',
          input: ['text', 'image'],
          ...claude,
          compat,
        },
        {
          id: 'anklume',
          reasoning: true,
          cost: { input: 0 },
          name: 'anklume: Claude Code in the anklume p…',
          input: ['text', 'image'],
          ...claude,
          compat: { supportsTools: true, ...compat },
        },
        {
          id: 'assistant',
          name: 'assistant: Claude Code as a general a…',
          input: ['text', 'image'],
          ...claude,
          compat,
        },
        // A llama mode sees no images unless modes.local.vision says it does.
        { id: 'local', name: 'local: Local model on llama-server', input: ['text'], compat },
      ],
    });
    expect(merged.agents.defaults.model).toEqual({
      primary: 'brainstem/active',
      fallbacks: ['ollama/qwen3'],
    });
    expect(merged.channels.telegram).toEqual(sample.channels.telegram);
    // the allow-list the user had now admits brainstem's models too
    expect(Object.keys(merged.agents.defaults.models)).toEqual([
      'ollama/qwen3',
      'brainstem/active',
      'brainstem/anklume',
      'brainstem/assistant',
      'brainstem/local',
    ]);
    // everything else untouched
    expect(merged.gateway).toEqual(sample.gateway);
    expect(merged.models.mode).toBe('merge');
    expect(merged.models.providers.ollama).toEqual(sample.models.providers.ollama);
    expect(merged.agents.defaults.workspace).toBe(sample.agents.defaults.workspace);
    expect(merged.agents.list).toEqual(sample.agents.list);
    expect(merged.channels.discord).toEqual({ enabled: true });
    // same permissions (the file holds keys), a byte-identical backup, no temporary file left
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const files = readdirSync(dir).filter((f) => f.startsWith('openclaw.json'));
    const backups = files.filter((f) => /^openclaw\.json\.bak-\d{4}-\d\d-\d\dT/.test(f));
    expect(backups).toHaveLength(1);
    const backup = path.join(dir, backups[0] ?? '');
    expect(readFileSync(backup, 'utf8')).toBe(original);
    expect(statSync(backup).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);

    // a second run finds nothing to change and writes no second backup
    const again = await run(['--apply', file]);
    expect(again.code).toBe(0);
    expect(again.out).toContain('nothing changed');
    expect(readdirSync(dir).filter((f) => f.includes('.bak-'))).toHaveLength(1);
  });

  it('--apply drops the allow-list entry and the fallback of a mode removed from brainstem.json, keeping the other providers’ entries', async () => {
    const file = path.join(dir, 'openclaw.json');
    const withList = {
      ...sample,
      agents: {
        ...sample.agents,
        defaults: { ...sample.agents.defaults, models: { 'ollama/qwen3': { alias: 'qwen' } } },
      },
    };
    writeFileSync(file, JSON.stringify(withList), { mode: 0o600 });
    const modes = {
      gone: { kind: 'llama', contextWindow: 8192 },
      later: { kind: 'llama', contextWindow: 8192 },
    };
    writeFileSync(env.BRAINSTEM_CONFIG ?? '', JSON.stringify({ defaultMode: 'assistant', modes }));
    expect((await run(['--apply', file])).code).toBe(0);
    const first = JSON.parse(readFileSync(file, 'utf8')).agents.defaults.models;
    expect(Object.keys(first)).toContain('brainstem/gone');
    // The owner gave one of brainstem's entries settings of their own: an alias.
    const edited = JSON.parse(readFileSync(file, 'utf8'));
    edited.agents.defaults.models['brainstem/later'] = { alias: 'l8r' };
    writeFileSync(file, JSON.stringify(edited), { mode: 0o600 });

    // …and named one as a fallback.
    edited.agents.defaults.model.fallbacks = ['brainstem/gone', 'ollama/qwen3'];
    writeFileSync(file, JSON.stringify(edited), { mode: 0o600 });

    // Both modes removed (the built-in ones are left): their entries go too, and it is said.
    writeFileSync(env.BRAINSTEM_CONFIG ?? '', JSON.stringify({ defaultMode: 'assistant' }));
    const { code, err } = await run(['--apply', file]);
    expect(code).toBe(0);
    expect(err).toContain(
      'agents.defaults.models: dropped brainstem/gone, brainstem/later (with its alias), no longer a brainstem mode (brainstem would refuse them); the backup keeps them\n',
    );
    expect(err).toContain(
      'agents.defaults.model.fallbacks: dropped brainstem/gone, no longer a brainstem mode (brainstem would refuse it)\n',
    );
    expect(JSON.parse(readFileSync(file, 'utf8')).agents.defaults.model.fallbacks).toEqual(['ollama/qwen3']);
    const merged = JSON.parse(readFileSync(file, 'utf8'));
    expect(Object.keys(merged.agents.defaults)).toEqual(Object.keys(withList.agents.defaults));
    expect(merged.agents.defaults.models).toEqual({
      'ollama/qwen3': { alias: 'qwen' },
      'brainstem/active': {},
      'brainstem/anklume': {},
      'brainstem/assistant': {},
      'brainstem/local': {},
    });
    expect((await run(['--apply', file])).out).toContain('nothing changed');
  });

  it('--apply adds brainstem/* to the allow-list OpenClaw reads since 2026.9 (agents.defaults.modelPolicy.allow), and only where it is needed', async () => {
    const file = path.join(dir, 'openclaw.json');
    const withPolicy = (allow: string[]) => ({
      ...sample,
      agents: { ...sample.agents, defaults: { ...sample.agents.defaults, modelPolicy: { allow } } },
    });
    writeFileSync(file, JSON.stringify(withPolicy(['ollama/*'])), { mode: 0o600 });
    const { code, err } = await run(['--apply', file]);
    expect(code).toBe(0);
    expect(err).toContain(
      "agents.defaults.modelPolicy.allow: brainstem/* added, so that OpenClaw may use brainstem's models (an empty list allows any)\n",
    );
    expect(JSON.parse(readFileSync(file, 'utf8')).agents.defaults.modelPolicy).toEqual({
      allow: ['ollama/*', 'brainstem/*'],
    });
    expect((await run(['--apply', file])).out).toContain('nothing changed');
    // A list that admits brainstem already, or an empty one (any model), is left as it is.
    for (const allow of [['*'], ['brain*', 'ollama/qwen3'], []]) {
      writeFileSync(file, JSON.stringify(withPolicy(allow)), { mode: 0o600 });
      const again = await run(['--apply', file]);
      expect(again.err).not.toContain('modelPolicy');
      expect(JSON.parse(readFileSync(file, 'utf8')).agents.defaults.modelPolicy).toEqual({ allow });
    }
  });

  it('--apply merges into a JSON5 openclaw.json (comments, trailing commas, unquoted keys), as OpenClaw reads it', async () => {
    const file = path.join(dir, 'openclaw.json');
    // As OpenClaw's docs write their examples, and as an owner edits the file by hand.
    const json5 = `// ~/.openclaw/openclaw.json
{
  /* the gateway */
  gateway: { port: 18789, mode: 'local', },
  agents: {
    defaults: { workspace: "~/.openclaw/workspace", model: { primary: 'ollama/qwen3' } }, // trailing comma
  },
  channels: { discord: { enabled: true, name: 'Café \\u00e9 ✓' } },
  models: { providers: { brainstem: { baseUrl: 'http://old:1/v1', models: [{ id: 'anklume', reasoning: true, },], }, }, },
}
`;
    writeFileSync(file, json5, { mode: 0o600 });
    const { code, out, err } = await run(['--apply', file]);
    expect(code).toBe(0);
    expect(err).toBe(
      LOCAL_SIZE_NOTE +
        `${file} is JSON5: written back as JSON, without its comments, as OpenClaw's own writes do (the backup keeps them)\n`,
    );
    expect(out).toContain(`merged the brainstem provider into ${file}`);
    const merged = JSON.parse(readFileSync(file, 'utf8'));
    expect(merged.gateway).toEqual({ port: 18789, mode: 'local' });
    expect(merged.agents.defaults).toEqual({
      workspace: '~/.openclaw/workspace',
      model: { primary: 'brainstem/active' },
    });
    expect(merged.channels.discord).toEqual({ enabled: true, name: 'Café \u00e9 ✓' });
    expect(merged.models.providers.brainstem.baseUrl).toBe('http://127.0.0.1:9191/v1');
    expect(merged.models.providers.brainstem.models[1]).toMatchObject({ id: 'anklume', reasoning: true });
    const backups = readdirSync(dir).filter((f) => f.includes('.bak-'));
    expect(backups).toHaveLength(1);
    expect(readFileSync(path.join(dir, backups[0] ?? ''), 'utf8')).toBe(json5);

    const again = await run(['--apply', file]);
    expect(again.out).toContain('nothing changed');
  });

  it('--apply writes each setting into the $include file that holds it, deciding on what OpenClaw reads', async () => {
    // The owner's split config, as OpenClaw's docs show it: sections in files of their own.
    const files: Record<string, string> = {
      'openclaw.json': `// ~/.openclaw/openclaw.json
{
  gateway: { port: 18789 },
  models: { $include: "./models.json5" }, // the providers
  agents: { $include: "./agents.json5" },
  channels: { telegram: { $include: "./telegram/bots.json5" } },
}
`,
      'models.json5': `{
  mode: "merge",
  providers: {
    ollama: { baseUrl: "http://127.0.0.1:11434/v1", api: "openai-completions", models: [{ id: "qwen3" }] },
    brainstem: { baseUrl: "http://old:1/v1", apiKey: "stale", models: [{ id: "gone" }, { id: "local", reasoning: true }] },
  },
}
`,
      'agents.json5': `{
  defaults: {
    model: { primary: "ollama/qwen3", fallbacks: ["brainstem/gone", "ollama/qwen3"] },
    modelPolicy: { allow: ["ollama/*"] },
  },
}
`,
      // Relative to the config directory; its own paths would be relative to telegram/.
      'telegram/bots.json5': `{
  dmPolicy: "pairing",
  accounts: { main: { botToken: "123:bot-token" }, other: { botToken: "456:other-bot" } },
}
`,
    };
    const oc = path.join(dir, 'oc');
    mkdirSync(path.join(oc, 'telegram'), { recursive: true });
    for (const [name, text] of Object.entries(files))
      writeFileSync(path.join(oc, name), text, { mode: 0o600 });
    writeFileSync(env.BRAINSTEM_CONFIG ?? '', JSON.stringify({ telegram: { front: { enabled: true } } }));
    env.TELEGRAM_BOT_TOKEN = '123:bot-token';
    const file = path.join(oc, 'openclaw.json');
    const front = 'http://127.0.0.1:9191/telegram';

    const { code, out, err } = await run(['--apply', file]);
    expect(code).toBe(0);
    // What the included files held was seen: the account of brainstem's bot, the stale model and
    // fallback, the allow-list without brainstem.
    expect(err).toContain(
      `channels.telegram.accounts.main has brainstem's bot token: its apiRoot is brainstem's front, ${front}\n`,
    );
    expect(err).toContain('models.providers.brainstem.models: dropped gone');
    expect(err).toContain('agents.defaults.modelPolicy.allow: brainstem/* added');
    expect(err).toContain('agents.defaults.model.fallbacks: dropped brainstem/gone');
    for (const name of ['models.json5', 'agents.json5', 'telegram/bots.json5'])
      expect(out).toContain(`${path.join(oc, name)} (backup: ${path.join(oc, name)}.bak-`);
    // openclaw.json is untouched, comments and $includes; nothing is set beside a $include.
    expect(readFileSync(file, 'utf8')).toBe(files['openclaw.json']);

    const seen = openclawReads(file);
    // Brainstem's models once each (not the file's ones and the new ones added together), the
    // owner's field on a model kept.
    expect(seen.models.providers.brainstem.models.map((m: { id: string }) => m.id)).toEqual([
      'active',
      'anklume',
      'assistant',
      'local',
    ]);
    expect(seen.models.providers.brainstem.models[3]).toMatchObject({ id: 'local', reasoning: true });
    expect(seen.models.providers.brainstem).toMatchObject({
      baseUrl: 'http://127.0.0.1:9191/v1',
      apiKey: TOKEN,
    });
    expect(seen.models.providers.ollama.models).toEqual([{ id: 'qwen3' }]);
    expect(seen.agents.defaults.model).toEqual({ primary: 'brainstem/active', fallbacks: ['ollama/qwen3'] });
    expect(seen.agents.defaults.modelPolicy.allow).toEqual(['ollama/*', 'brainstem/*']);
    // No channel-wide token or apiRoot beside the accounts: no second account on the bot, the other bot's off the front.
    expect(seen.channels.telegram).toEqual({
      dmPolicy: 'pairing',
      accounts: {
        main: { botToken: '123:bot-token', enabled: true, apiRoot: front },
        other: { botToken: '456:other-bot' },
      },
    });
    // A backup of each file written, as it was.
    for (const name of ['models.json5', 'agents.json5', 'telegram/bots.json5']) {
      const where = path.dirname(path.join(oc, name));
      const backups = readdirSync(where).filter((f) => f.startsWith(`${path.basename(name)}.bak-`));
      expect(backups).toHaveLength(1);
      expect(readFileSync(path.join(where, backups[0] ?? ''), 'utf8')).toBe(files[name]);
    }
    expect((await run(['--apply', file])).out).toContain('nothing changed');
  });

  it('--apply writes into a list of $includes and the keys beside it where each setting is, and refuses what both set', async () => {
    const oc = path.join(dir, 'oc');
    mkdirSync(oc);
    const file = path.join(oc, 'openclaw.json');
    const top = `{
  // the whole config from two files, the agent's model overridden here
  $include: ["./base.json5", "./models.json5"],
  agents: { defaults: { model: { primary: "ollama/qwen3" } } },
}
`;
    const base =
      '{ gateway: { port: 1 }, channels: { telegram: { enabled: true, botToken: "123:bot-token" } } }\n';
    const models =
      '{ models: { providers: { brainstem: { models: [{ id: "gone" }] } } }, agents: { defaults: { models: { "brainstem/gone": {} } } } }\n';
    writeFileSync(file, top);
    writeFileSync(path.join(oc, 'base.json5'), base);
    writeFileSync(path.join(oc, 'models.json5'), models);
    writeFileSync(env.BRAINSTEM_CONFIG ?? '', JSON.stringify({ telegram: { front: { enabled: true } } }));
    env.TELEGRAM_BOT_TOKEN = '123:bot-token';

    const { code } = await run(['--apply', file]);
    expect(code).toBe(0);
    const seen = openclawReads(file);
    expect(seen.models.providers.brainstem.models.map((m: { id: string }) => m.id)).toEqual([
      'active',
      'anklume',
      'assistant',
      'local',
    ]);
    expect(Object.keys(seen.agents.defaults.models)).toEqual([
      'brainstem/active',
      'brainstem/anklume',
      'brainstem/assistant',
      'brainstem/local',
    ]);
    expect(seen.agents.defaults.model).toEqual({ primary: 'brainstem/active' });
    expect(seen.channels.telegram).toEqual({
      enabled: true,
      botToken: '123:bot-token',
      apiRoot: 'http://127.0.0.1:9191/telegram',
    });
    // Each setting where it was: the primary beside the $include, the channel in base.json5, the
    // models in models.json5; the $include list kept.
    expect(JSON5.parse(readFileSync(file, 'utf8'))).toEqual({
      $include: ['./base.json5', './models.json5'],
      agents: { defaults: { model: { primary: 'brainstem/active' } } },
    });
    expect(JSON5.parse(readFileSync(path.join(oc, 'base.json5'), 'utf8')).channels.telegram.apiRoot).toBe(
      'http://127.0.0.1:9191/telegram',
    );

    // brainstem's models both in an included file and beside the $include: OpenClaw would add the
    // two lists together, so nothing is written, and the settings to place by hand are printed.
    const both = `{
  models: { $include: "./models.json5", providers: { brainstem: { models: [{ id: "local" }] } } },
}
`;
    writeFileSync(file, both);
    writeFileSync(
      path.join(oc, 'models.json5'),
      '{ providers: { brainstem: { models: [{ id: "gone" }] } } }',
    );
    const before = readdirSync(oc).sort();
    const refused = await run(['--apply', file]);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain(
      `brainstem openclaw-config: ${file} takes settings from $include files that brainstem cannot write through; nothing changed. models.providers.brainstem.models: the $include "./models.json5" in ${file} and the keys beside it both set it, which OpenClaw merges (arrays added together)`,
    );
    expect(refused.err).not.toContain(TOKEN);
    // What the merge would have done is said as such: no backup keeps what nothing dropped.
    const [, would] = refused.err.split('had it been written (nothing was, no backup made):\n');
    expect(would).toContain('models.providers.brainstem.models: dropped gone');
    expect(refused.err.split('had it been written')[0]).not.toContain('backup keeps');
    expect(
      JSON.parse(refused.out).models.providers.brainstem.models.map((m: { id: string }) => m.id),
    ).toEqual(['active', 'anklume', 'assistant', 'local']);
    expect(readFileSync(file, 'utf8')).toBe(both);
    expect(readdirSync(oc).sort()).toEqual(before);

    // An $include outside the config directory, which OpenClaw refuses too: nothing written.
    writeFileSync(path.join(dir, 'outside.json5'), '{}');
    writeFileSync(file, '{ models: { $include: "../outside.json5" } }');
    const outside = await run(['--apply', file]);
    expect(outside.code).toBe(1);
    expect(outside.err).toContain(`$include "../outside.json5" in ${file} is outside ${oc}`);
    expect(outside.err).toContain('nothing changed');
    expect(readFileSync(file, 'utf8')).toBe('{ models: { $include: "../outside.json5" } }');

    // A file of the directory whose name starts with two dots is in it, not above it.
    writeFileSync(path.join(oc, '..gateway.json5'), '{ port: 18789 }');
    writeFileSync(file, '{ gateway: { $include: "./..gateway.json5" } }');
    const dotted = await run(['--apply', file]);
    expect(dotted.err).not.toContain('is outside');
    expect(dotted.code).toBe(0);
    expect(openclawReads(file).gateway).toEqual({ port: 18789 });
  });

  it('--apply reads an $include under an OPENCLAW_INCLUDE_ROOTS entry written with ~, which OpenClaw expands', async () => {
    // A tree shared between machines, its root given as OpenClaw's docs allow (tilde expanded):
    // set in a unit file or OpenClaw's .env, no shell expands it. HOME is the test's directory.
    const { shared, file } = configIncludingShared(dir, 'oc');
    env.OPENCLAW_INCLUDE_ROOTS = ' ~/shared ';
    const { code, err } = await run(['--apply', file]);
    expect(err).not.toContain('is outside');
    expect(code).toBe(0);
    const seen = openclawReads(file);
    expect(seen.gateway).toEqual({ port: 18789 });
    expect(seen.models.providers.brainstem).toMatchObject({ baseUrl: 'http://127.0.0.1:9191/v1' });
    // The shared file is read, never written (OpenClaw keeps it read-only too).
    expect(readFileSync(path.join(shared, 'gateway.json5'), 'utf8')).toBe('{ port: 18789 }');
  });

  it('--apply reads an $include under a relative OPENCLAW_INCLUDE_ROOTS entry as OpenClaw does, against its gateway’s working directory, and says so', async () => {
    // OpenClaw resolves the entry against its own working directory: the home directory for the
    // gateway service it installs (the test's directory here); brainstem runs elsewhere.
    const { shared, file } = configIncludingShared(dir, 'oc');
    expect(process.cwd()).not.toBe(dir);
    env.OPENCLAW_INCLUDE_ROOTS = `/nowhere${path.delimiter}shared`;
    const { code, err } = await run(['--apply', file]);
    expect(err).not.toContain('is outside');
    expect(code).toBe(0);
    expect(err).toContain(
      `OPENCLAW_INCLUDE_ROOTS: the entry "shared" is relative: OpenClaw resolves it against its gateway's working directory, the home directory for the service it installs (its systemd unit sets none), so it was taken as ${shared}; an absolute path or ~/… names it whatever the directory\n`,
    );
    const seen = openclawReads(file);
    expect(seen.gateway).toEqual({ port: 18789 });
    expect(seen.models.providers.brainstem).toMatchObject({ baseUrl: 'http://127.0.0.1:9191/v1' });
    expect(readFileSync(path.join(shared, 'gateway.json5'), 'utf8')).toBe('{ port: 18789 }');
  });

  it('--apply reads OPENCLAW_INCLUDE_ROOTS from OpenClaw’s ~/.openclaw/.env, which OpenClaw loads under its own environment', async () => {
    const { oc, file, top } = configIncludingShared(dir, '.openclaw');
    // As OpenClaw's docs tell to keep its variables; a value in brainstem's environment would win.
    writeFileSync(path.join(oc, '.env'), '# OpenClaw\nOPENCLAW_INCLUDE_ROOTS=~/shared\n', { mode: 0o600 });
    const { code, err } = await run(['--apply', file]);
    expect(err).not.toContain('is outside');
    expect(code).toBe(0);
    expect(openclawReads(file).gateway).toEqual({ port: 18789 });

    // Set in the process environment, it wins over the file, as in OpenClaw.
    writeFileSync(file, top, { mode: 0o600 });
    env.OPENCLAW_INCLUDE_ROOTS = path.join(dir, 'elsewhere');
    const refused = await run(['--apply', file]);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('is outside');
  });

  it('--apply finds brainstem’s bot behind a variable or TELEGRAM_BOT_TOKEN that OpenClaw’s .env sets, and keeps the token out of openclaw.json', async () => {
    const oc = path.join(dir, '.openclaw');
    mkdirSync(oc);
    const file = path.join(oc, 'openclaw.json');
    const front = 'http://127.0.0.1:9191/telegram';
    const dotenv = path.join(oc, '.env');
    writeFileSync(dotenv, 'MAIN_BOT="123:bot-token"\nOTHER_BOT=456:other\n', { mode: 0o600 });
    // biome-ignore lint/suspicious/noTemplateCurlyInString: OpenClaw's ${VAR} syntax, meant literally
    const main = { botToken: '${MAIN_BOT}' };
    // biome-ignore lint/suspicious/noTemplateCurlyInString: OpenClaw's ${VAR} syntax, meant literally
    const other = { botToken: '${OTHER_BOT}' };
    const named = await applyWithFront(file, {
      ...sample,
      channels: { telegram: { accounts: { main, other } } },
    });
    expect(named.code).toBe(0);
    expect(named.err).toContain(
      `channels.telegram.accounts.main has brainstem's bot token: its apiRoot is brainstem's front, ${front}\n`,
    );
    expect(JSON.parse(readFileSync(file, 'utf8')).channels.telegram).toEqual({
      accounts: { main: { ...main, enabled: true, apiRoot: front }, other },
    });

    // The channel gives no token: OpenClaw takes TELEGRAM_BOT_TOKEN from its .env (for the account
    // `default` alone), the owner's way of keeping it out of the file (`openclaw channels add --use-env`).
    writeFileSync(dotenv, 'TELEGRAM_BOT_TOKEN=123:bot-token\n', { mode: 0o600 });
    const fromEnv = await applyWithFront(file, {
      ...sample,
      channels: { telegram: { dmPolicy: 'pairing' } },
    });
    expect(fromEnv.code).toBe(0);
    expect(fromEnv.err).toContain(
      `channels.telegram.botToken is not written: OpenClaw takes the bot token from TELEGRAM_BOT_TOKEN in ${dotenv}, which holds brainstem's bot token\n`,
    );
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain('bot-token');
    expect(JSON.parse(text).channels.telegram).toEqual({
      dmPolicy: 'pairing',
      enabled: true,
      apiRoot: front,
    });

    // With accounts, that variable makes the account `default`, which gets the front.
    const implicit = await applyWithFront(file, {
      ...sample,
      channels: { telegram: { accounts: { other: { botToken: '456:other' } } } },
    });
    expect(implicit.code).toBe(0);
    expect(implicit.err).toContain(
      `channels.telegram.accounts.default has brainstem's bot token: its apiRoot is brainstem's front, ${front}\n`,
    );
    expect(JSON.parse(readFileSync(file, 'utf8')).channels.telegram.accounts).toEqual({
      other: { botToken: '456:other' },
      default: { enabled: true, apiRoot: front },
    });

    // An account of its own on that bot: the variable makes a second one, which brainstem says
    // (it cannot remove a variable) rather than add.
    const twice = await applyWithFront(file, {
      ...sample,
      channels: { telegram: { accounts: { work: { botToken: '123:bot-token' } } } },
    });
    expect(twice.code).toBe(0);
    expect(twice.err).toContain(
      `TELEGRAM_BOT_TOKEN in ${dotenv} is channels.telegram.accounts.work's bot token too, and makes OpenClaw run a second account "default" on that bot: remove it there\n`,
    );
    expect(JSON.parse(readFileSync(file, 'utf8')).channels.telegram.accounts).toEqual({
      work: { botToken: '123:bot-token', enabled: true, apiRoot: front },
    });

    // Another bot's token there: the botToken written takes over, and that is said.
    writeFileSync(dotenv, 'TELEGRAM_BOT_TOKEN=456:other\n', { mode: 0o600 });
    const over = await applyWithFront(file, { ...sample, channels: { telegram: {} } });
    expect(over.err).toContain(
      `channels.telegram.botToken is written with brainstem's bot token, which OpenClaw takes over TELEGRAM_BOT_TOKEN in ${dotenv} (another bot's token)\n`,
    );
    expect(JSON.parse(readFileSync(file, 'utf8')).channels.telegram.botToken).toBe('123:bot-token');
  });

  it('--apply does not take an account whose tokenFile is a symlink for brainstem’s bot: OpenClaw refuses one', async () => {
    const file = path.join(dir, 'openclaw.json');
    writeFileSync(path.join(dir, 'tg-token'), '123:bot-token\n', { mode: 0o600 });
    const link = path.join(dir, 'tg-link');
    symlinkSync(path.join(dir, 'tg-token'), link);
    const { code, err } = await applyWithFront(file, {
      ...sample,
      channels: { telegram: { accounts: { main: { tokenFile: link }, other: { botToken: '456:other' } } } },
    });
    expect(code).toBe(0);
    expect(err).toContain(
      `channels.telegram.accounts.main.tokenFile ${link} is a symlink, which OpenClaw refuses (a regular file of its own, at most 16 KB): that account gets no bot token from it\n`,
    );
    expect(err).toContain(
      "no account of channels.telegram.accounts is known to have brainstem's bot token (main",
    );
    expect(JSON.parse(readFileSync(file, 'utf8')).channels.telegram).toEqual({
      accounts: { main: { tokenFile: link }, other: { botToken: '456:other' } },
    });
  });

  it('--apply says whether a variable kept for the API key holds brainstem’s token, where it sees the variable (never its value)', async () => {
    const oc = path.join(dir, '.openclaw');
    mkdirSync(oc);
    const file = path.join(oc, 'openclaw.json');
    const dotenv = path.join(oc, '.env');
    const withRef = {
      ...sample,
      models: { ...sample.models, providers: { brainstem: { apiKey: TOKEN_REF } } },
    };
    writeFileSync(dotenv, 'BRAINSTEM_TOKEN=bst_an-older-token\n', { mode: 0o600 });
    const stale = await applyWithFront(file, withRef);
    expect(stale.code).toBe(0);
    expect(stale.err).toContain(
      `models.providers.brainstem.apiKey is kept as ${TOKEN_REF}: OpenClaw must resolve it to brainstem's API token, but it comes out as another value (BRAINSTEM_TOKEN in ${dotenv}): set it to brainstem's API token where OpenClaw reads it\n`,
    );
    expect(stale.err + stale.out).not.toContain('an-older-token');
    expect(JSON.parse(readFileSync(file, 'utf8')).models.providers.brainstem.apiKey).toBe(TOKEN_REF);

    writeFileSync(dotenv, `BRAINSTEM_TOKEN=${TOKEN}\n`, { mode: 0o600 });
    const right = await applyWithFront(file, withRef);
    expect(right.err).toContain(
      `models.providers.brainstem.apiKey is kept as ${TOKEN_REF}: OpenClaw must resolve it to brainstem's API token, and does (BRAINSTEM_TOKEN in ${dotenv})\n`,
    );
    expect(right.err).not.toContain(TOKEN);

    // A variable within the string is a reference too (OpenClaw substitutes it anywhere in it):
    // kept, where it used to be overwritten with the token itself. Its other characters are part
    // of the secret: only the variable is said.
    const head = TOKEN.slice(0, 'bst_test-token'.length);
    const inline = `${head}\${TOKEN_TAIL}`;
    writeFileSync(dotenv, `TOKEN_TAIL=${TOKEN.slice(head.length)}\n`, { mode: 0o600 });
    const within = await applyWithFront(file, {
      ...withRef,
      models: { ...sample.models, providers: { brainstem: { apiKey: inline } } },
    });
    expect(within.err).toContain(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: OpenClaw's ${VAR} syntax, meant literally
      "models.providers.brainstem.apiKey is kept as a string naming ${TOKEN_TAIL} (its other characters, part of the secret, not shown): OpenClaw must resolve it to brainstem's API token, and does (TOKEN_TAIL in " +
        `${dotenv})\n`,
    );
    expect(within.err + within.out).not.toContain(head);
    expect(JSON.parse(readFileSync(file, 'utf8')).models.providers.brainstem.apiKey).toBe(inline);
  });

  it('--apply refuses a change to a file included at two settings under two names (a symlink), rather than losing one', async () => {
    const oc = path.join(dir, 'oc');
    mkdirSync(oc);
    const file = path.join(oc, 'openclaw.json');
    const top = '{ "models": { "$include": "./shared.json" }, "agents": { "$include": "./alias.json" } }\n';
    const shared = '{ "providers": {} }\n';
    writeFileSync(file, top, { mode: 0o600 });
    writeFileSync(path.join(oc, 'shared.json'), shared, { mode: 0o600 });
    symlinkSync('shared.json', path.join(oc, 'alias.json'));
    const before = readdirSync(oc).sort();

    const { code, err } = await run(['--apply', file]);
    // Written through each name, the provider added through one was overwritten by the other's
    // write (OpenClaw left with brainstem/active as its model and no brainstem provider).
    expect(err).toContain(
      `it is in ${path.join(oc, 'shared.json')}, which is included at models and agents (as ${path.join(oc, 'alias.json')}): a change there changes both`,
    );
    expect(code).toBe(1);
    expect(readFileSync(path.join(oc, 'shared.json'), 'utf8')).toBe(shared);
    expect(readFileSync(file, 'utf8')).toBe(top);
    expect(readdirSync(oc).sort()).toEqual(before);
  });

  it('--apply changes none of the $include files when one of them cannot be written, and names it', async () => {
    const oc = path.join(dir, 'oc');
    mkdirSync(oc);
    // A name its backup (and temporary file) cannot have: 29 more characters pass the 255 a
    // directory entry holds. Deterministic where a read-only directory is not (root writes there).
    const long = `${'t'.repeat(230)}.json`;
    const files: Record<string, string> = {
      'openclaw.json':
        '{ "models": { "$include": "./models.json" }, "channels": { "telegram": { "$include": "./' +
        long +
        '" } } }\n',
      'models.json':
        '{ "providers": { "ollama": { "baseUrl": "http://127.0.0.1:11434/v1", "models": [] } } }\n',
      [long]: '{ "enabled": true, "botToken": "old-token" }\n',
    };
    for (const [name, text] of Object.entries(files))
      writeFileSync(path.join(oc, name), text, { mode: 0o600 });
    writeFileSync(env.BRAINSTEM_CONFIG ?? '', JSON.stringify({ telegram: { front: { enabled: true } } }));
    env.TELEGRAM_BOT_TOKEN = '123:bot-token';
    const file = path.join(oc, 'openclaw.json');

    const { code, out, err } = await run(['--apply', file]);
    expect(code).toBe(1);
    expect(out).toBe('');
    expect(err).toContain(
      `brainstem openclaw-config: ${path.join(oc, long)} cannot be written (ENAMETOOLONG); nothing changed, in it nor in ${file}, ${path.join(oc, 'models.json')} (written together), no backup kept\n`,
    );
    expect(err).not.toContain(TOKEN);
    // All or nothing: openclaw.json and models.json, written first, are as they were, and no
    // backup nor temporary file is left beside them.
    for (const [name, text] of Object.entries(files))
      expect(readFileSync(path.join(oc, name), 'utf8')).toBe(text);
    expect(readdirSync(oc).sort()).toEqual(Object.keys(files).sort());
  });

  // A write that fails part-way (a full disk: ENOSPC; here the file size limit: EFBIG) has made its
  // file already: the new content, cut short, was left beside openclaw.json as a hidden temporary
  // file, though the error said nothing changed. (A backup cut short is removed by Node's copyFile.)
  it('--apply that cannot write the new content to the end leaves no part of it beside the file', async () => {
    const oc = path.join(dir, 'oc');
    mkdirSync(oc);
    const file = path.join(oc, 'openclaw.json');
    const text = `${JSON.stringify(sample, null, 2)}\n`;
    writeFileSync(file, text, { mode: 0o600 });
    writeFileSync(env.BRAINSTEM_CONFIG ?? '', JSON.stringify({ telegram: { front: { enabled: true } } }));
    env.TELEGRAM_BOT_TOKEN = '123:bot-token';
    // The limit applies to the whole process: a process of its own, its modules loaded (a first
    // run) before it is set. One byte over the old file's size: the backup, a copy, fits; the new
    // content, larger, does not.
    const script = path.join(dir, 'apply-limited.mts');
    const module = pathToFileURL(path.resolve('src/commands/openclaw-config.ts')).href;
    writeFileSync(
      script,
      `import { execFileSync } from 'node:child_process';
import { statSync, writeSync } from 'node:fs';
import { runOpenclawConfig } from ${JSON.stringify(module)};
const env = ${JSON.stringify(env)};
const sink = { write: () => undefined };
await runOpenclawConfig([], env, sink, sink);
const limit = statSync(${JSON.stringify(file)}).size + 1;
execFileSync('prlimit', ['--pid', String(process.pid), '--fsize=' + limit]);
let err = '';
const code = await runOpenclawConfig(['--apply', ${JSON.stringify(file)}], env, sink, { write: (s) => { err += s; } });
writeSync(1, JSON.stringify({ code, err }));
`,
    );
    const { code, out } = await runAlone(script);
    expect(code).toBe(0);
    const r = JSON.parse(out) as { code: number; err: string };
    expect(r.code).toBe(1);
    expect(r.err).toContain(`brainstem openclaw-config: ${file} cannot be written (EFBIG); nothing changed`);
    expect(readFileSync(file, 'utf8')).toBe(text);
    expect(readdirSync(oc)).toEqual(['openclaw.json']);
  });

  it('--apply leaves a file that is neither JSON nor JSON5 untouched, with a clear error', async () => {
    const file = path.join(dir, 'openclaw.json');
    // Its fault next to the bot token (a missing comma): the error says where, never the text around it.
    const broken = `{\n  // a comment\n  channels: { telegram: { enabled: true botToken: "${TOKEN}" } },\n}\n`;
    writeFileSync(file, broken);
    const { code, out, err } = await run(['--apply', file]);
    expect(code).toBe(1);
    expect(out).toBe('');
    expect(err).toContain(
      `${file} is neither JSON (Expected property name or '}' in JSON at line 2 column 3) nor JSON5 (a syntax error at line 3 column 41); nothing changed`,
    );
    expect(err).not.toContain(TOKEN);
    expect(readFileSync(file, 'utf8')).toBe(broken);
    expect(readdirSync(dir).filter((f) => f !== 'openclaw.json' && f !== 'data')).toEqual([]);
  });

  it('--apply refuses a missing file and a file that is not a JSON object', async () => {
    const missing = await run(['--apply', path.join(dir, 'nope.json')]);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('nope.json does not exist');

    const file = path.join(dir, 'array.json');
    writeFileSync(file, '[1, 2]');
    const notObject = await run(['--apply', file]);
    expect(notObject.code).toBe(1);
    expect(notObject.err).toContain('does not hold a JSON object');
    expect(readFileSync(file, 'utf8')).toBe('[1, 2]');
  });

  it('names a llama-server URL without its credentials', async () => {
    env.LLAMA_BASE_URL = 'http://u:SECRETPW@127.0.0.1:1/v1';
    const { err } = await run([]);
    expect(err).toContain('llama-server at http://[redacted]@127.0.0.1:1/v1 did not say');
    expect(err).not.toContain('SECRETPW');
  });

  it('rejects unknown options with the usage', async () => {
    const { code, err } = await run(['--aply', 'x']);
    expect(code).toBe(2);
    expect(err).toContain('usage: npm run -s openclaw-config -- [--apply PATH]');
  });
});

/**
 * An `openclaw.json` in `dir`/`configDir` whose gateway is an `$include` of `dir`/shared/gateway.json5,
 * a folder outside the config directory that only OPENCLAW_INCLUDE_ROOTS lets OpenClaw read.
 */
function configIncludingShared(
  dir: string,
  configDir: string,
): { shared: string; oc: string; file: string; top: string } {
  const shared = path.join(dir, 'shared');
  mkdirSync(shared);
  writeFileSync(path.join(shared, 'gateway.json5'), '{ port: 18789 }');
  const oc = path.join(dir, configDir);
  mkdirSync(oc);
  const file = path.join(oc, 'openclaw.json');
  const top = `{ gateway: { $include: ${JSON.stringify(path.join(shared, 'gateway.json5'))} } }`;
  writeFileSync(file, top, { mode: 0o600 });
  return { shared, oc, file, top };
}
