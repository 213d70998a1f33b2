import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { cliEnv } from '../brains/claude-code/env.js';
import { ownSources } from '../src/auth-notice.js';
import { loadConfig } from '../src/config.js';
import { credentialsFromEnv, readCredentials } from '../src/credentials.js';
import { billingOf } from '../src/credit/billing.js';
import { ownFiles } from '../src/own-files.js';
import { startFakeAnthropic, text } from './fakes/anthropic.js';
import { CLAUDE_BIN } from './helpers/claude-bin.js';
import { claudeOnFake } from './helpers/claude-fake.js';
import { modeConfig } from './helpers/mode-config.js';

/**
 * /creds, the doctor and the credentials watcher name the variable Claude Code takes its
 * credentials from, and billing (the credit) goes by it: both must be the one the real CLI
 * sends when several are set, in brainstem's environment and in `claude.env`.
 */
const claude = claudeOnFake({ script: () => text('ok') });

const mode = modeConfig({ id: 'assistant', kind: 'claude' });

/** The variables the CLI sent a value of, with the environment built as the brain builds it. */
async function sent(own: Record<string, string>, claudeEnv: Record<string, string>): Promise<string[]> {
  const { ANTHROPIC_API_KEY: _key, CLAUDE_CODE_OAUTH_TOKEN: _token, ...base } = claude.cli.env;
  const env = cliEnv({ PATH: process.env.PATH, ...own }, { ...base, ...claudeEnv });
  await promisify(execFile)(CLAUDE_BIN, ['-p', 'hi', '--output-format', 'json'], { env });
  const values = new Set(
    claude.fake.requests.flatMap((r) => [
      r.headers['x-api-key'],
      r.headers.authorization?.replace(/^Bearer /, ''),
    ]),
  );
  return Object.entries({ ...own, ...claudeEnv })
    .filter(([, value]) => value && values.has(value))
    .map(([name]) => name);
}

describe('the variable Claude Code takes its credentials from', () => {
  it('is the one the CLI sends: an API key before a setup-token, a gateway’s token before both, a blank in claude.env unsets', async () => {
    // Each case's values are its own, so the cases run at once and their requests are told apart.
    const cases: { own: Record<string, string>; claudeEnv: Record<string, string> }[] = [
      // The key in brainstem's environment, the setup-token in claude.env: the CLI sends the key.
      {
        own: { ANTHROPIC_API_KEY: 'sk-own-1' },
        claudeEnv: { CLAUDE_CODE_OAUTH_TOKEN: 'sk-ant-oat01-cfg-1' },
      },
      // claude.env blanks the inherited key: the CLI sends the setup-token, the subscription pays.
      {
        own: { ANTHROPIC_API_KEY: 'sk-own-2', CLAUDE_CODE_OAUTH_TOKEN: 'sk-ant-oat01-own-2' },
        claudeEnv: { ANTHROPIC_API_KEY: '' },
      },
      { own: {}, claudeEnv: { ANTHROPIC_AUTH_TOKEN: 'gw-3', CLAUDE_CODE_OAUTH_TOKEN: 'sk-ant-oat01-cfg-3' } },
    ];
    const results = await Promise.all(cases.map((c) => sent(c.own, c.claudeEnv)));
    expect(results).toEqual([['ANTHROPIC_API_KEY'], ['CLAUDE_CODE_OAUTH_TOKEN'], ['ANTHROPIC_AUTH_TOKEN']]);
    for (const [i, c] of cases.entries()) {
      expect(credentialsFromEnv(c.claudeEnv, c.own)).toBe(results[i]?.[0]);
    }
    expect(cases.map((c) => billingOf(mode, c.claudeEnv, c.own))).toEqual([
      'api_key',
      'subscription',
      'api_key',
    ]);
  });
});

describe('the credentials file brainstem watches', () => {
  /** A /login file in `dir` whose access token is `token`. */
  const login = (dir: string, token: string) => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      path.join(dir, '.credentials.json'),
      JSON.stringify({
        claudeAiOauth: {
          accessToken: token,
          refreshToken: `${token}-refresh`,
          expiresAt: Date.now() + 3_600_000,
          scopes: ['user:inference', 'user:profile'],
          subscriptionType: 'max',
        },
      }),
      { mode: 0o600 },
    );
  };

  it('is the one the CLI reads: in CLAUDE_CONFIG_DIR when claude.env or brainstem’s environment sets it, else ~/.claude', async () => {
    const { HOME: _h, CLAUDE_CONFIG_DIR: _d, ...base } = claude.cli.env;
    // Each case has its own files and tokens, so the cases run at once and their requests are told apart.
    const cases = (
      [
        { own: {}, claudeEnv: {} },
        { own: { CLAUDE_CONFIG_DIR: 'own' }, claudeEnv: {} },
        { own: { CLAUDE_CONFIG_DIR: 'own' }, claudeEnv: { CLAUDE_CONFIG_DIR: 'cfg' } },
      ] as { own: Record<string, string>; claudeEnv: Record<string, string> }[]
    ).map((c, i) => {
      const root = mkdtempSync(path.join(tmpdir(), 'brainstem-config-dir-'));
      const at = (dir: Record<string, string>): Record<string, string> =>
        dir.CLAUDE_CONFIG_DIR ? { CLAUDE_CONFIG_DIR: path.join(root, dir.CLAUDE_CONFIG_DIR) } : {};
      login(path.join(root, '.claude'), `sk-ant-oat01-dir-home-${i}`);
      login(path.join(root, 'own'), `sk-ant-oat01-dir-own-${i}`);
      login(path.join(root, 'cfg'), `sk-ant-oat01-dir-cfg-${i}`);
      writeFileSync(path.join(root, 'brainstem.json'), JSON.stringify({ claude: { env: at(c.claudeEnv) } }));
      return {
        root,
        own: { HOME: root, ...at(c.own) },
        claudeEnv: at(c.claudeEnv),
        tokens: [`home-${i}`, `own-${i}`, `cfg-${i}`],
      };
    });
    const sentTokens = await Promise.all(
      cases.map(async (c) => {
        // No key nor setup-token: the CLI logs in with the file, as after `claude /login`.
        const extra = { ...base, ANTHROPIC_API_KEY: '', CLAUDE_CODE_OAUTH_TOKEN: '', ...c.claudeEnv };
        const env = cliEnv({ PATH: process.env.PATH, ...c.own }, extra);
        await promisify(execFile)(CLAUDE_BIN, ['-p', 'hi', '--output-format', 'json'], { env });
        const sent = claude.fake.requests.map((r) =>
          r.headers.authorization?.replace(/^Bearer sk-ant-oat01-dir-/, ''),
        );
        return c.tokens.find((t) => sent.includes(t));
      }),
    );
    expect(sentTokens).toEqual(['home-0', 'own-1', 'cfg-2']);
    for (const [i, c] of cases.entries()) {
      const file = loadConfig(c.own, c.root).claude.credentialsFile;
      const { accessToken } = JSON.parse(readFileSync(file, 'utf8')).claudeAiOauth as { accessToken: string };
      expect(accessToken).toBe(`sk-ant-oat01-dir-${sentTokens[i]}`);
    }
  });

  it('in a CLAUDE_CONFIG_DIR given with `~` or a relative path is the one the CLI reads from its own cwd, and one folder spelled two ways is one login', async () => {
    const { HOME: _h, CLAUDE_CONFIG_DIR: _d, ...base } = claude.cli.env;
    const root = mkdtempSync(path.join(tmpdir(), 'brainstem-dir-spelling-'));
    const home = path.join(root, 'home');
    // The CLI runs in the mode's workspace, not in brainstem's cwd (root).
    const workspace = path.join(root, 'workspace');
    mkdirSync(workspace);
    login(path.join(home, 'cfg'), 'sk-ant-oat01-spelt-cfg');
    login(path.join(root, 'own'), 'sk-ant-oat01-spelt-own');
    const own = (spelt: string) => ({
      kind: 'claude',
      description: 'own login',
      env: { CLAUDE_CONFIG_DIR: spelt },
    });
    writeFileSync(
      path.join(root, 'brainstem.json'),
      JSON.stringify({
        claude: { env: { CLAUDE_CONFIG_DIR: '~/cfg' } },
        modes: { slash: own('own/'), dots: own('x/../own') },
      }),
    );
    const config = loadConfig({ HOME: home }, root);
    expect(config.claude.credentialsFile).toBe(path.join(home, 'cfg', '.credentials.json'));
    const groups = ownSources(config.modes, config.claude.env, { HOME: home });
    expect(groups.map((g) => [g.modes, g.source.file])).toEqual([
      [['slash', 'dots'], path.join(root, 'own', '.credentials.json')],
    ]);
    // The real CLI, its environment built as the brain builds it, logs in with the same files.
    const tokenSent = async (modeEnv: Record<string, string>) => {
      const extra = {
        ...base,
        ANTHROPIC_API_KEY: '',
        CLAUDE_CODE_OAUTH_TOKEN: '',
        ...config.claude.env,
        ...modeEnv,
      };
      const env = cliEnv({ PATH: process.env.PATH, HOME: home }, extra);
      const before = claude.fake.requests.length;
      await promisify(execFile)(CLAUDE_BIN, ['-p', 'hi', '--output-format', 'json'], { env, cwd: workspace });
      return claude.fake.requests.slice(before).map((r) => r.headers.authorization);
    };
    expect(await tokenSent({})).toContain('Bearer sk-ant-oat01-spelt-cfg');
    const dots = config.modes.find((m) => m.id === 'dots');
    expect(await tokenSent(dots?.env ?? {})).toContain('Bearer sk-ant-oat01-spelt-own');
  });

  it('of a mode whose env gives its CLI a HOME of its own is that HOME’s, and as secret as claude.env’s', async () => {
    const { HOME: _h, CLAUDE_CONFIG_DIR: _d, ...base } = claude.cli.env;
    const root = mkdtempSync(path.join(tmpdir(), 'brainstem-own-home-'));
    const ownHome = path.join(root, 'own-home');
    login(path.join(root, '.claude'), 'sk-ant-oat01-home-shared');
    login(path.join(ownHome, '.claude'), 'sk-ant-oat01-home-own');
    writeFileSync(
      path.join(root, 'brainstem.json'),
      JSON.stringify({
        modes: { ownhome: { kind: 'claude', description: 'a login of its own', env: { HOME: ownHome } } },
      }),
    );
    // The mode's CLI, its environment built as the brain builds it: the mode's env over brainstem's.
    const extra = { ...base, ANTHROPIC_API_KEY: '', CLAUDE_CODE_OAUTH_TOKEN: '', HOME: ownHome };
    const env = cliEnv({ PATH: process.env.PATH, HOME: root }, extra);
    const before = claude.fake.requests.length;
    await promisify(execFile)(CLAUDE_BIN, ['-p', 'hi', '--output-format', 'json'], { env });
    const sent = claude.fake.requests.slice(before).map((r) => r.headers.authorization);
    expect(sent).toContain('Bearer sk-ant-oat01-home-own');
    // That login is kept from Claude's file tools (another mode allowed Read) as claude.env's is.
    const config = loadConfig({ HOME: root }, root);
    expect(ownFiles(config).files).toEqual(
      expect.arrayContaining([
        path.join(root, '.claude', '.credentials.json'),
        path.join(ownHome, '.claude', '.credentials.json'),
      ]),
    );
  });
});

describe('a cloud provider’s account in brainstem’s environment', () => {
  /** The requests the real CLI made with the environment the brain builds from `own`. */
  const requests = async (own: Record<string, string>) => {
    const fake = await startFakeAnthropic();
    try {
      const home = mkdtempSync(path.join(tmpdir(), 'brainstem-cloud-'));
      const env = cliEnv(
        { PATH: process.env.PATH, HOME: home, ...own },
        { CLAUDE_CODE_MAX_RETRIES: '0', ANTHROPIC_BEDROCK_BASE_URL: fake.url },
      );
      await promisify(execFile)(CLAUDE_BIN, ['-p', 'hi', '--output-format', 'json'], { env }).catch(() => {});
      return fake.requests;
    } finally {
      await fake.close();
    }
  };

  it('reaches the CLI when it runs on Bedrock: AWS_* with CLAUDE_CODE_USE_BEDROCK, and only then', async () => {
    const aws = {
      AWS_REGION: 'eu-west-3',
      AWS_ACCESS_KEY_ID: 'AKIABRAINSTEMTEST',
      AWS_SECRET_ACCESS_KEY: 'aws-secret-brainstem-test',
    };
    const sent = await requests({ CLAUDE_CODE_USE_BEDROCK: '1', ...aws });
    // The CLI signed its Bedrock calls with the key and region brainstem holds.
    expect(
      sent.some(
        (r) =>
          r.headers.authorization?.includes('Credential=AKIABRAINSTEMTEST/') &&
          r.headers.authorization.includes('/eu-west-3/bedrock/'),
      ),
    ).toBe(true);
    // Without Bedrock, a cloud key brainstem holds stays out of the CLI (and of the commands it runs).
    expect(Object.keys(cliEnv({ PATH: '/bin', ...aws }, {}))).toEqual(['PATH']);
    // Bedrock switched on in claude.env (or a mode's env) passes them too; a blank there switches it off.
    expect(cliEnv({ ...aws }, { CLAUDE_CODE_USE_BEDROCK: '1' })).toMatchObject(aws);
    expect(
      Object.keys(cliEnv({ CLAUDE_CODE_USE_BEDROCK: '1', ...aws }, { CLAUDE_CODE_USE_BEDROCK: '' })),
    ).toEqual(['CLAUDE_CODE_USE_BEDROCK']);
  });

  it('reaches the CLI when it runs on Vertex: GOOGLE_APPLICATION_CREDENTIALS and the region with CLAUDE_CODE_USE_VERTEX', () => {
    const google = {
      GOOGLE_APPLICATION_CREDENTIALS: '/etc/brainstem/sa.json',
      CLOUD_ML_REGION: 'europe-west1',
    };
    expect(cliEnv({ CLAUDE_CODE_USE_VERTEX: '1', ...google }, {})).toMatchObject(google);
    expect(cliEnv(google, { CLAUDE_CODE_USE_VERTEX: '1' })).toMatchObject(google);
    expect(cliEnv(google, {})).toEqual({});
  });
});

describe('a mode’s own login in ~/.claude (its env blanks claude.env’s key)', () => {
  it('is the file in the CLI’s HOME, as /creds, the watcher and the doctor read it, not a folder named ~', async () => {
    const home = mkdtempSync(path.join(tmpdir(), 'brainstem-own-home-'));
    const dir = path.join(home, '.claude');
    mkdirSync(dir);
    writeFileSync(
      path.join(dir, '.credentials.json'),
      JSON.stringify({ claudeAiOauth: { accessToken: 'x', expiresAt: Date.now() + 3_600_000 } }),
    );
    const own = modeConfig({ id: 'onlogin', kind: 'claude', env: { ANTHROPIC_API_KEY: '' } });
    const [group] = ownSources([own], { ANTHROPIC_API_KEY: 'sk-shared' }, { HOME: home });
    expect(group?.source.file).toBe(path.join(dir, '.credentials.json'));
    expect((await readCredentials(group?.source.file ?? '')).ok).toBe(true);
  });
});
