import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { httpError, text } from './fakes/anthropic.js';
import { CLAUDE_BIN } from './helpers/claude-bin.js';
import { claudeOnFake } from './helpers/claude-fake.js';
import { type Harness, OWNER, startClaudeHarness, startHarness } from './telegram-harness.js';

/**
 * The notice the notify chats get when Claude refuses its credentials: the real CLI on the fake
 * Messages API, the Bot API emulator as Telegram. It speaks the notices' language, as every notice.
 */

const claude = claudeOnFake();
let h: Harness;

beforeAll(async () => {
  h = await startClaudeHarness(claude.cli.env);
});
afterAll(async () => {
  await h?.close();
});

/** A /login file, as the CLI writes it: with a refresh token, its access token (ending `token`) valid for hours. */
const writeLogin = (file: string, token: string) =>
  writeFile(
    file,
    JSON.stringify({
      claudeAiOauth: {
        accessToken: `sk-ant-oat01-${token}`,
        refreshToken: `sk-ant-ort01-${token}`,
        expiresAt: Date.now() + 6 * 3_600_000,
        scopes: ['user:inference', 'user:profile'],
        subscriptionType: 'max',
      },
    }),
    { mode: 0o600 },
  );

describe('the credentials-refused notice', { timeout: 60_000 }, () => {
  it('is in French once the owner writes in French, as the answer is', async () => {
    claude.fake.script(() => httpError(401, { message: 'invalid x-api-key', shouldRetry: false }));
    h.tg.user(OWNER, { languageCode: 'fr' }).says('bonjour');
    // The owner's chat is a notify chat too: the answer and the notice both come there.
    const told = await h.tg.waitFor(
      () => {
        const said = h.tg.botMessages(OWNER).filter((m) => /identifiants|credentials/.test(m.text));
        return said.length === 2 && said;
      },
      { timeoutMs: 30_000 },
    );
    for (const m of told) {
      expect(m.text).toMatch(/^⚙️ \[proxy\] (⚠️ )?Claude a refusé ses identifiants \(/);
      expect(m.text).not.toMatch(/refused its credentials/);
    }
  });
});

describe('/creds after Claude refused a /login file’s credentials', { timeout: 60_000 }, () => {
  const fake = claudeOnFake();
  let h2: Harness;
  let file: string;
  let configDir: string;
  const login = () => writeLogin(file, 'NEVER-SHOWN');

  beforeAll(async () => {
    configDir = path.join(fake.cli.home, 'login');
    await mkdir(configDir, { recursive: true });
    file = path.join(configDir, '.credentials.json');
    await login();
    // No key nor setup-token: the CLI runs on the file, which brainstem watches and /creds reads.
    const env = {
      ...fake.cli.env,
      CLAUDE_CONFIG_DIR: configDir,
      ANTHROPIC_API_KEY: '',
      CLAUDE_CODE_OAUTH_TOKEN: '',
    };
    h2 = await startHarness({
      env: { CLAUDE_BIN, CLAUDE_CREDENTIALS_FILE: file },
      parts: { bot: true, credentials: true },
      config: { defaultMode: 'assistant', claude: { env, maxRetries: 0 } },
    });
  });
  afterAll(async () => {
    await h2?.close();
  });

  const creds = async (user: number) => {
    const asked = h2.tg.botMessages(user).filter((m) => /Claude credentials/.test(m.text)).length;
    h2.tg.user(user).says('/creds');
    return h2.tg.waitFor(
      () => h2.tg.botMessages(user).filter((m) => /Claude credentials/.test(m.text))[asked],
    );
  };

  it('says the refusal the unchanged file does not show (a revoked refresh token), until the file changes', async () => {
    // Anthropic revoked the refresh token: the CLI's renewal fails, the file stays as it was.
    fake.fake.script(() => httpError(401, { message: 'OAuth token has been revoked', shouldRetry: false }));
    h2.tg.user(112).says('hello');
    await h2.tg.waitFor(() => h2.tg.botMessages(112).find((m) => /refused its credentials/.test(m.text)), {
      timeoutMs: 30_000,
    });
    const refused = await creds(112);
    expect(refused.text).toMatch(
      /⚠️ Claude refused these credentials at \d{4}-\d\d-\d\d \d\d:\d\d UTC \(a Claude turn failed on them\) and the file has not changed since: Claude Code could not renew them\. Log in again on the host \(/,
    );
    // The CLI reads claude.env's CLAUDE_CONFIG_DIR: a bare `claude` would log in to ~/.claude.
    expect(refused.text).toContain(`host (CLAUDE_CONFIG_DIR=${configDir} claude, then /login).`);
    // The file still says all is well: it is the refusal that tells.
    expect(refused.text).toContain('Refresh token present');

    // The owner logged in again: the CLI rewrote the file.
    await login();
    fake.fake.script(() => text('hi again'));
    const after = await creds(112);
    expect(after.text).not.toContain('⚠️');
    expect(after.text).toMatch(/✅ Expires/);
    expect(JSON.stringify(h2.tg.calls)).not.toContain('NEVER-SHOWN');
  });
});

describe('the credentials-refused notice, per credentials', { timeout: 90_000 }, () => {
  const fake = claudeOnFake();
  let h3: Harness;
  let url = '';
  const token = 'auth-notice-test-token-0123456789';

  beforeAll(async () => {
    // `assistant` and `anklume` (both built in) run on claude.env's key; `billed` on a key of its own.
    h3 = await startClaudeHarness(fake.cli.env, {
      server: { apiToken: token },
      modes: {
        billed: {
          kind: 'claude',
          description: 'Claude on its own key',
          env: { ANTHROPIC_API_KEY: 'sk-billed' },
        },
      },
    });
    const address = h3.service.app.server.address();
    if (typeof address !== 'object' || address === null) throw new Error('the server does not listen');
    url = `http://127.0.0.1:${address.port}`;
  });
  afterAll(async () => {
    vi.useRealTimers();
    await h3?.close();
  });

  /** An OpenAI client's call to `model`: its answer's text, once the turn is over. */
  const ask = async (model: string) => {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hello' }] }),
    });
    const body = (await res.json()) as { choices: { message: { content: string } }[] };
    return body.choices[0]?.message.content ?? '';
  };
  const notices = () => h3.tg.botMessages(OWNER).filter((m) => /refused its credentials/.test(m.text));
  const shared = () => notices().filter((m) => m.text.includes('ANTHROPIC_API_KEY in claude.env'));
  /** A notice is recorded before the answer that raised it ends: once none waits, all were sent. */
  const allSent = () =>
    h3.tg.waitFor(() => h3.service.core.notifier.pending().length === 0, { timeoutMs: 30_000 });
  const refuse = () =>
    fake.fake.script(() => httpError(401, { message: 'invalid x-api-key', shouldRetry: false }));

  it('is sent once for two modes on one key refused either side of an hour, and apart for a mode’s own key', async () => {
    refuse();
    // Only Date moves, a second before the hour: the service's timers and the CLI run on real time.
    const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000 + 3_600_000;
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true, now: hour - 1_000 });
    h3.tg.user(113).says('hello');
    await h3.tg.waitFor(() => h3.tg.botMessages(113).find((m) => /refused its credentials/.test(m.text)), {
      timeoutMs: 30_000,
    });
    await allSent();
    expect(notices()).toHaveLength(1);
    vi.setSystemTime(hour + 500);
    expect(await ask('anklume')).toMatch(/refused its credentials/);
    expect(await ask('billed')).toMatch(/refused its credentials/);
    await allSent();
    expect(notices()).toHaveLength(2);
    expect(shared()).toHaveLength(1);
    expect(notices()[1]?.text).toContain('ANTHROPIC_API_KEY in modes.billed.env');
    expect(JSON.stringify(h3.tg.calls)).not.toContain('sk-billed');
  });

  it('is sent again when the credentials fail after a turn went through on them', async () => {
    const before = notices().length;
    fake.fake.script(() => text('hi'));
    expect(await ask('assistant')).toContain('hi');
    refuse();
    expect(await ask('anklume')).toMatch(/refused its credentials/);
    await allSent();
    expect(notices()).toHaveLength(before + 1);
    expect(notices().at(-1)?.text).toContain('ANTHROPIC_API_KEY in claude.env');
  });
});

describe('/creds after Claude refused a mode’s own key', { timeout: 120_000 }, () => {
  const fake = claudeOnFake();
  let h4: Harness;
  let ownDir: string;
  let freshDir: string;

  beforeAll(async () => {
    // A login of its own for `ownlogin`: a setup-token-like file, without a refresh token, expired.
    ownDir = path.join(fake.cli.home, 'own-login');
    await mkdir(ownDir, { recursive: true });
    await writeFile(
      path.join(ownDir, '.credentials.json'),
      JSON.stringify({
        claudeAiOauth: { accessToken: 'sk-ant-oat01-OWN-NEVER-SHOWN', expiresAt: Date.now() - 3_600_000 },
      }),
      { mode: 0o600 },
    );
    // And for `ownfresh`, a /login file that works until Anthropic refuses it.
    freshDir = path.join(fake.cli.home, 'fresh-login');
    await mkdir(freshDir, { recursive: true });
    await writeLogin(path.join(freshDir, '.credentials.json'), 'FRESH-NEVER-SHOWN');
    // The mode answering is `billed`, on a key of its own; /creds tells of claude.env's key first.
    h4 = await startClaudeHarness(fake.cli.env, {
      defaultMode: 'billed',
      modes: {
        billed: {
          kind: 'claude',
          description: 'Claude on its own key',
          env: { ANTHROPIC_API_KEY: 'sk-billed' },
        },
        ownlogin: {
          kind: 'claude',
          description: 'Claude on a login of its own',
          env: { CLAUDE_CONFIG_DIR: ownDir, ANTHROPIC_API_KEY: '', CLAUDE_CODE_OAUTH_TOKEN: '' },
        },
        ownfresh: {
          kind: 'claude',
          description: 'Claude on another login of its own',
          env: { CLAUDE_CONFIG_DIR: freshDir, ANTHROPIC_API_KEY: '', CLAUDE_CODE_OAUTH_TOKEN: '' },
        },
      },
    });
  });
  afterAll(async () => {
    await h4?.close();
  });

  it('does not say claude.env’s key was refused, and says the mode’s own key was, and its own file’s expiry', async () => {
    fake.fake.script(() => httpError(401, { message: 'invalid x-api-key', shouldRetry: false }));
    h4.tg.user(114).says('hello');
    await h4.tg.waitFor(() => h4.tg.botMessages(114).find((m) => /refused its credentials/.test(m.text)), {
      timeoutMs: 30_000,
    });
    h4.tg.user(114).says('/creds');
    const creds = await h4.tg.waitFor(() =>
      h4.tg.botMessages(114).find((m) => /Claude credentials/.test(m.text)),
    );
    const [shared = '', ...own] = creds.text.split('\n\n');
    expect(shared).toContain('ANTHROPIC_API_KEY');
    expect(shared).not.toContain('Last refused by Claude');
    const billed = own.find((s) => s.includes('mode billed'));
    expect(billed).toMatch(/^🔑 Own credentials of mode billed: ANTHROPIC_API_KEY in modes\.billed\.env$/m);
    expect(billed).toMatch(
      /⚠️ Last refused by Claude: \d{4}-\d\d-\d\d \d\d:\d\d UTC\. If its turns still fail, renew ANTHROPIC_API_KEY in the mode’s env\./,
    );
    const ownLogin = own.find((s) => s.includes('mode ownlogin'));
    expect(ownLogin).toContain(`the credentials file in ${ownDir}`);
    expect(ownLogin).toMatch(/⛔ Expired .* ago/);
    expect(ownLogin).toContain('No refresh token');
    expect(ownLogin).not.toContain('refused');
    expect(JSON.stringify(h4.tg.calls)).not.toMatch(/sk-billed|NEVER-SHOWN/);
  });

  it('says to log in again with the mode’s own config dir once Claude refused its login', async () => {
    h4.tg.user(115).says('/mode ownfresh');
    // Its readiness runs `claude auth status` in its own config dir, which waits on the network
    // this machine lacks (some 5 s, more under load).
    await h4.tg.waitFor(() => h4.tg.botMessages(115).find((m) => /Mode ownfresh is ready/.test(m.text)), {
      timeoutMs: 60_000,
    });
    fake.fake.script(() => httpError(401, { message: 'OAuth token has been revoked', shouldRetry: false }));
    h4.tg.user(115).says('hello');
    await h4.tg.waitFor(() => h4.tg.botMessages(115).find((m) => /refused its credentials/.test(m.text)), {
      timeoutMs: 30_000,
    });
    h4.tg.user(115).says('/creds');
    const creds = await h4.tg.waitFor(() =>
      h4.tg.botMessages(115).find((m) => /Claude credentials/.test(m.text)),
    );
    const fresh = creds.text.split('\n\n').find((s) => s.includes('mode ownfresh')) ?? '';
    expect(fresh).toMatch(/⚠️ Claude refused these credentials at .* and the file has not changed since/);
    // That mode's CLI reads its own config dir: a bare `claude` would log in to ~/.claude.
    expect(fresh).toContain(
      `log in again on the host with this config dir (CLAUDE_CONFIG_DIR=${freshDir} claude, then /login).`,
    );
    expect(JSON.stringify(h4.tg.calls)).not.toMatch(/NEVER-SHOWN/);
  });
});
