import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCredentials } from '../src/credentials.js';
import type { PartChoice } from '../src/service.js';
import { type FakeLlama, startFakeLlama } from './fakes/llama.js';
import { type FakeTelegram, startFakeTelegram } from './fakes/telegram.js';
import { type Harness, nextLog, OWNER, startHarness } from './telegram-harness.js';

let dir: string;
let tg: FakeTelegram;
let llama: FakeLlama;
let file: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'brainstem-creds-'));
  file = path.join(dir, 'credentials.json');
  tg = await startFakeTelegram();
  llama = await startFakeLlama();
});
afterAll(async () => {
  await tg.close();
  await llama.close();
  await rm(dir, { recursive: true, force: true });
});

/**
 * A credentials file; `renewable`: with a refresh token, as /login writes it. Without one (written
 * by hand, or copied without it) Claude Code cannot renew the access token.
 */
const writeCreds = (expiresAt: number, { renewable = false } = {}) =>
  writeFile(
    file,
    JSON.stringify({
      claudeAiOauth: {
        accessToken: 'sk-ant-oat01-NEVER-SHOWN',
        ...(renewable ? { refreshToken: 'sk-ant-ort01-NEVER-SHOWN' } : {}),
        expiresAt,
        scopes: ['user:inference', 'user:profile'],
        subscriptionType: 'max',
        rateLimitTier: 'default_claude_max_5x',
      },
    }),
  );

const start = (parts: PartChoice = { bot: true, credentials: true }) =>
  startHarness({
    tg,
    llama,
    dir,
    parts,
    config: { credentials: { warnBeforeMinutes: 60, pollIntervalMs: 150 } },
  });

const notices = (pattern: RegExp) => tg.botMessages(OWNER).filter((m) => pattern.test(m.text));

/**
 * Resolves once the watcher has finished `count` more checks (polls, watch events and deadlines
 * alike) and the notices they raised are delivered: a notice that should not come would be there.
 */
async function checksLater(h: Harness, count: number): Promise<void> {
  await nextLog(h, (l) => l.msg === 'credentials checked')(count);
  await h.service.core.notifier.flush();
}

/** Writes the file, then resolves once a check has seen it and the notices it raised are delivered. */
async function writeSeen(h: Harness, expiresAt: number, renewable: boolean): Promise<void> {
  const seen = nextLog(h, (l) => l.msg === 'credentials checked' && l.expiresAt === expiresAt);
  await writeCreds(expiresAt, { renewable });
  await seen();
  await h.service.core.notifier.flush();
}

describe('Claude credentials', () => {
  it('reads subscription and expiry, and says why a file is unusable', async () => {
    await writeCreds(1_900_000_000_000, { renewable: true });
    const read = await readCredentials(file);
    expect(read).toEqual({
      ok: true,
      info: {
        expiresAt: 1_900_000_000_000,
        subscriptionType: 'max',
        rateLimitTier: 'default_claude_max_5x',
        scopes: ['user:inference', 'user:profile'],
        renewable: true,
      },
    });
    expect(JSON.stringify(read)).not.toContain('NEVER-SHOWN');
    await writeCreds(1_900_000_000_000);
    expect(await readCredentials(file)).toMatchObject({ ok: true, info: { renewable: false } });
    expect(await readCredentials(path.join(dir, 'absent.json'))).toMatchObject({ ok: false, missing: true });
    await writeFile(path.join(dir, 'broken.json'), '{"claudeAiOauth": ');
    expect(await readCredentials(path.join(dir, 'broken.json'))).toMatchObject({
      ok: false,
      reason: { en: 'the file is not valid JSON' },
    });
    // Past the last time a Date holds: every line saying when it expires would throw.
    await writeCreds(9e15);
    expect(await readCredentials(file)).toMatchObject({
      ok: false,
      reason: { en: 'the file has no claudeAiOauth.expiresAt that is a time (not OAuth credentials?)' },
    });
  });

  it('without a refresh token, warns before expiry, says when it expired, and notices the renewal by /login, each once, none repeated after a restart', async () => {
    const h = await start();
    try {
      // Within the warning window (60 min), far from expiry: whenever the watcher sees it, it warns.
      await writeCreds(Date.now() + 30 * 60_000);
      const warning = await tg.waitFor(() => notices(/Claude credentials expire at/)[0]);
      expect(warning.text).toMatch(
        /^⚙️ \[proxy\] ⏳ Claude credentials expire at .* UTC, in (29 min \d\d s|30 min 00 s)\. To renew by hand, run claude/,
      );
      expect(warning.entities.some((e) => e.type === 'code')).toBe(true);

      // The CLI wrote an expiry that has passed (earlier than the last one: no renewal).
      await writeCreds(Date.now() - 60_000);
      const expired = await tg.waitFor(() => notices(/Claude credentials expired at/)[0]);
      expect(expired.text).toMatch(
        /^⚙️ \[proxy\] ⛔ Claude credentials expired at .* UTC\. The file has no refresh token, so Claude Code cannot renew them/,
      );

      // The owner ran /login, as told: its file has a refresh token, and the renewal is told all the same.
      const renewedExpiry = Date.now() + 2 * 3_600_000;
      await writeCreds(renewedExpiry, { renewable: true });
      const renewed = await tg.waitFor(() => notices(/Claude credentials renewed/)[0]);
      expect(renewed.text).toMatch(
        /^⚙️ \[proxy\] 🔑 Claude credentials renewed \(max\): valid until .* \((1 h 59|2 h 00) min from now\)\.$/,
      );

      await checksLater(h, 2);
      expect(notices(/Claude credentials/)).toHaveLength(3);

      tg.user(OWNER).says('/creds');
      const creds = await tg.waitFor(() => notices(/Last renewal seen: \d{4}-/)[0]);
      expect(creds.text).toMatch(/✅ Expires .* in (1 h 59|2 h 00) min/);
    } finally {
      await h.stopService();
    }

    const again = await start();
    try {
      await checksLater(again, 2);
      expect(notices(/Claude credentials (expire|expired|renewed)/)).toHaveLength(3);
    } finally {
      await again.stopService();
    }
    expect(JSON.stringify(tg.calls)).not.toContain('NEVER-SHOWN');
  });

  it('with a refresh token (a /login file), an access token that nears expiry, expires or is renewed by Claude Code raises no notice; /creds still shows it', async () => {
    const h = await start();
    try {
      // The notices, not /creds's answers (titled "Claude credentials" too).
      const raised = () => notices(/Claude credentials/).filter((n) => !/Refresh token present/.test(n.text));
      const before = raised().length;
      // Within the warning window (60 min): Claude Code renews it at its next run.
      await writeSeen(h, Date.now() + 30 * 60_000, true);
      // The bot sat idle: the access token aged past its expiry. /creds says so without alarm.
      await writeSeen(h, Date.now() - 60_000, true);
      const aged = notices(/Refresh token present/).length;
      tg.user(OWNER).says('/creds');
      const agedView = await tg.waitFor(() => notices(/Refresh token present/)[aged]);
      expect(agedView.text).toMatch(/🔄 Access token expired .* ago: Claude Code renews it at its next run/);
      expect(agedView.text).not.toContain('⛔');
      // A turn ran Claude Code, which renewed it (an access token lives about 8 h).
      const renewedExpiry = Date.now() + 8 * 3_600_000;
      await writeSeen(h, renewedExpiry, true);
      expect(h.service.core.kv.get('credentials_renewed_at')).toMatch(/^\d+$/);
      // Each write was seen by a check, which raised its notices before saying so, and they are delivered.
      expect(raised()).toHaveLength(before);

      const asked = notices(/Refresh token present/).length;
      tg.user(OWNER).says('/creds');
      const creds = await tg.waitFor(() => notices(/Refresh token present/)[asked]);
      expect(creds.text).toMatch(/✅ Expires .* in (7 h 59|8 h 00) min/);
      expect(creds.text).toMatch(/Last renewal seen: \d{4}-/);
    } finally {
      await h.stopService();
    }
  });

  it('keeps a notice raised while the bot was off and delivers it when the bot starts', async () => {
    // Later than the expiry the test before left (8 h): a renewal.
    const later = Date.now() + 10 * 3_600_000;
    await writeCreds(later);
    // brainstem without the bot: the renewal is seen and the notice waits in SQLite.
    const before = notices(/Claude credentials renewed/).length;
    const headless = await start({ credentials: true });
    await tg.waitFor(() => headless.service.core.notifier.pending().some((n) => /renewed/.test(n.text)));
    await headless.stopService();
    expect(notices(/Claude credentials renewed/)).toHaveLength(before);

    const withBot = await start();
    try {
      await tg.waitFor(() => notices(/Claude credentials renewed/).length === before + 1);
      // Any delivery already on its way ends first; the notice is then marked sent, never delivered again.
      await withBot.service.core.notifier.flush();
      expect(withBot.service.core.notifier.pending()).toEqual([]);
      expect(notices(/Claude credentials renewed/)).toHaveLength(before + 1);
    } finally {
      await withBot.stopService();
    }
  });

  it('a renewal seen only after its new expiry passed (brainstem was stopped meanwhile) is told as expired, never as valid for a negative time', async () => {
    const firstExpiry = Date.now() - 2 * 3_600_000;
    await writeCreds(firstExpiry);
    const h = await start();
    try {
      // Seen by the watcher: the data dir still holds the expiry the tests before left.
      await tg.waitFor(() => h.service.core.kv.get('credentials_expires_at') === String(firstExpiry));
      const at = notices(/Claude credentials/).length;
      // The CLI renewed the token on the host meanwhile; that one ran out too.
      const renewedExpiry = Date.now() - 3_600_000;
      await writeCreds(renewedExpiry);
      await tg.waitFor(() => h.service.core.kv.get('credentials_expires_at') === String(renewedExpiry));
      const hhmm = new Date(renewedExpiry).toISOString().slice(11, 16);
      // The check that saw the renewal raised any notice about it before this one, and notices are
      // delivered in the order they were raised: one told as valid would be here already.
      await tg.waitFor(() => notices(new RegExp(`Claude credentials expired at .* ${hhmm} UTC`))[0]);
      const said = notices(/Claude credentials/)
        .slice(at)
        .map((m) => m.text);
      expect(said.join('\n')).not.toMatch(/renewed.*valid until|-\d+ ms/);
    } finally {
      await h.stopService();
    }
  });

  it('with a token in Claude Code’s environment (claude setup-token), the file it does not use raises no notice, and /creds says where the credentials come from', async () => {
    // The file of an old /login, about to expire: Claude Code no longer reads it.
    await writeCreds(Date.now() + 1500);
    const before = notices(/Claude credentials (expire|expired|renewed)/).length;
    const h = await startHarness({
      tg,
      llama,
      dir,
      parts: { bot: true, credentials: true },
      config: {
        credentials: { warnBeforeMinutes: 1, pollIntervalMs: 150 },
        claude: { env: { CLAUDE_CODE_OAUTH_TOKEN: 'sk-ant-oat01-NEVER-SHOWN' } },
      },
    });
    try {
      // Said as the watcher would have started: no watcher, so no notice can come of the file.
      expect(h.logs.map((l) => l.msg)).toContain(
        'Claude Code gets its credentials from CLAUDE_CODE_OAUTH_TOKEN: the credentials file is not watched',
      );
      tg.user(117).says('/creds');
      const creds = await tg.waitFor(() =>
        tg.botMessages(117).find((m) => /Claude credentials/.test(m.text)),
      );
      expect(creds.text).toContain('CLAUDE_CODE_OAUTH_TOKEN');
      expect(creds.text).not.toMatch(/Expired|Log in once/);
      // A watcher starts with the parts, before the bot that answered /creds, and its first check
      // raises a notice at once (the file expires within warnBeforeMinutes, or has): any is delivered now.
      await h.service.core.notifier.flush();
      expect(notices(/Claude credentials (expire|expired|renewed)/)).toHaveLength(before);
      expect(h.logs.map((l) => l.msg)).not.toContain('credentials checked');
    } finally {
      await h.stopService();
    }
    expect(JSON.stringify(tg.calls)).not.toContain('NEVER-SHOWN');
  });
  it('a mode’s own login (its own CLAUDE_CONFIG_DIR) is watched too, its notice naming the mode', async () => {
    const ownDir = path.join(dir, 'own-login');
    await mkdir(ownDir, { recursive: true });
    // Written by hand, without a refresh token, expired an hour ago: that mode's turns fail.
    const expiresAt = Date.now() - 3_600_000;
    await writeFile(
      path.join(ownDir, '.credentials.json'),
      JSON.stringify({ claudeAiOauth: { accessToken: 'sk-ant-oat01-OWN-NEVER-SHOWN', expiresAt } }),
    );
    const h = await startHarness({
      tg,
      llama,
      dir,
      parts: { bot: true, credentials: true },
      config: {
        credentials: { warnBeforeMinutes: 60, pollIntervalMs: 150 },
        // claude.env's setup-token is the shared credentials: no file of theirs is watched.
        claude: { env: { CLAUDE_CODE_OAUTH_TOKEN: 'sk-ant-oat01-NEVER-SHOWN' } },
        modes: {
          ownlogin: {
            kind: 'claude',
            description: 'Claude on a login of its own',
            env: { CLAUDE_CONFIG_DIR: ownDir, CLAUDE_CODE_OAUTH_TOKEN: '' },
          },
        },
      },
    });
    try {
      const told = await tg.waitFor(() => notices(/own login of mode ownlogin/)[0]);
      expect(told.text).toMatch(
        new RegExp(
          `^⚙️ \\[proxy\\] ⛔ Claude credentials expired at .* UTC\\. The file has no refresh token.* \\(own login of mode ownlogin: the credentials file in ${ownDir}\\.\\)$`,
        ),
      );
      // Renewed in its own config dir: a bare `claude /login` would log in to ~/.claude.
      expect(told.text).toContain(`run CLAUDE_CONFIG_DIR=${ownDir} claude on the host`);
      // Its state is its own: claude.env's (none here) is not touched.
      expect(h.service.core.kv.get('credentials_expires_at')).not.toBe(String(expiresAt));
    } finally {
      await h.stopService();
    }
    expect(JSON.stringify(tg.calls)).not.toContain('NEVER-SHOWN');
  });
  it('/creds says a span past a day in days and hours, in the reader’s language', async () => {
    const h = await start();
    try {
      // A /login whose access token aged for weeks while only local modes ran.
      await writeSeen(h, Date.now() - (40 * 24 + 3) * 3_600_000 - 60_000, true);
      const fr = tg.botMessages(113).length;
      tg.user(113, { languageCode: 'fr' }).says('/creds');
      const aged = await tg.waitFor(() => tg.botMessages(113)[fr]);
      expect(aged.text).toMatch(
        /🔄 Jeton d’accès expiré le .* UTC, il y a 40 j 3 h : Claude Code le renouvelle/,
      );
      // An expiry weeks away (a token written by hand, valid long).
      await writeSeen(h, Date.now() + (20 * 24 * 60 + 30) * 60_000, false);
      const en = tg.botMessages(114).length;
      tg.user(114).says('/creds');
      const far = await tg.waitFor(() => tg.botMessages(114)[en]);
      expect(far.text).toMatch(/✅ Expires .* UTC, in 20 d 0 h$/m);
    } finally {
      await h.stopService();
    }
  });
});
