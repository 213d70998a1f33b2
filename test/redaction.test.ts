import path from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.js';
import { type FakeAnthropic, text, toolUse } from './fakes/anthropic.js';
import { collect } from './helpers/claude-harness.js';
import { startClaudeService, startTestService, type TestService } from './helpers/service.js';

/**
 * Secrets in tool arguments, error messages and log lines are stored
 * redacted, found by name and by shape: the audit rows are read from the real
 * SQLite file after real /api calls.
 */

const TELEGRAM_TOKEN = '123456789:AAEhBP0av28AbcdEfgHijKlmnOpqRstUvwX';
/** Values that must never be written down, besides the service's own token. */
const SECRETS = ['hunter2pass', 'APIKEYVALUE1', 'TOKENVALUE1', 'KEYVALUE1', 'BEARERVALUE1', 'FLAGVALUE1'];

let svc: TestService;

async function api(tool: string, body: unknown) {
  const res = await fetch(`${svc.url}/api/${tool}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${svc.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as { error?: { message: string } } };
}

beforeAll(async () => {
  svc = await startTestService({
    parts: { tools: true },
    config: {
      claude: { bin: 'true' },
      tools: {
        // No incus here: the call fails, and is audited all the same.
        incus: { instances: ['web'] },
        files: { roots: [process.cwd()] },
        // Port 9 on loopback: allowed, nothing listens, so the fetch fails and its error names the URL.
        webFetch: { allowPrivate: ['127.0.0.1'], timeoutMs: 5_000 },
      },
    },
  });
});
afterAll(async () => {
  await svc?.close();
});

describe('audit rows', () => {
  it('hold no secret from URLs, argv, headers or tokens, by name or by shape', async () => {
    expect(svc.token).toMatch(/^bst_/);
    const fetched = await api('web_fetch', {
      url: 'http://alice:hunter2pass@127.0.0.1:9/path?api_key=APIKEYVALUE1&token=TOKENVALUE1&key=KEYVALUE1&q=visible',
    });
    // The caller gave the URL; only what is written down is scrubbed.
    expect(fetched.body.error?.message).toContain('Could not fetch');
    await api('incus_exec', {
      instance: 'web',
      command: [
        'curl',
        '-H',
        'Authorization: Bearer BEARERVALUE1',
        '--token',
        'FLAGVALUE1',
        `https://api.telegram.org/bot${TELEGRAM_TOKEN}/getMe`,
        svc.token,
      ],
    });
    await api('read_file', { path: `missing-${svc.token}.txt` });

    const db = new Database(path.join(svc.dir, 'data', 'brainstem.sqlite'), { readonly: true });
    const rows = db
      .prepare<[], { tool: string; args: string; error: string | null }>(
        'SELECT tool, args, error FROM audit',
      )
      .all();
    db.close();
    const stored = JSON.stringify(rows);
    expect(rows.map((r) => r.tool).sort()).toEqual(['incus_exec', 'read_file', 'web_fetch']);
    for (const secret of [...SECRETS, TELEGRAM_TOKEN, svc.token]) expect(stored).not.toContain(secret);

    const byTool = Object.fromEntries(rows.map((r) => [r.tool, r]));
    // What is not secret stays readable.
    expect(JSON.parse(byTool.web_fetch?.args ?? '{}').url).toBe(
      'http://[redacted]@127.0.0.1:9/path?api_key=[redacted]&token=[redacted]&key=[redacted]&q=visible',
    );
    // web_fetch says the URL back without its credentials (it sends them as Basic auth).
    expect(byTool.web_fetch?.error).toContain('Could not fetch http://127.0.0.1:9/path?');
    expect(JSON.parse(byTool.incus_exec?.args ?? '{}').command).toEqual([
      'curl',
      '-H',
      'Authorization: [redacted]',
      '--token',
      '[redacted]',
      'https://api.telegram.org/bot[redacted]/getMe',
      '[redacted]',
    ]);
    expect(byTool.read_file?.error).toContain('missing-[redacted].txt');
  });
});

describe('password flags and credential headers in audit rows', () => {
  it('are stored redacted, the rest of the command readable', async () => {
    const commands = [
      ['mysql', '-uroot', '-phunter2mysql', 'db'],
      ['curl', '-u', 'admin:hunter2curl', 'https://example.com'],
      ['sshpass', '-p', 'hunter2sshpass', 'ssh', 'host'],
      ['curl', '-H', 'X-Vault-Token: hvs.hunter2vault', 'https://vault'],
    ];
    for (const command of commands) await api('incus_exec', { instance: 'web', command });
    const stored = svc.service.core.db
      .prepare<[], { args: string }>(
        "SELECT args FROM audit WHERE tool = 'incus_exec' ORDER BY id DESC LIMIT 4",
      )
      .all()
      .map((r) => JSON.parse(r.args).command)
      .reverse();
    expect(stored).toEqual([
      ['mysql', '-uroot', '-p[redacted]', 'db'],
      ['curl', '-u', '[redacted]', 'https://example.com'],
      ['sshpass', '-p', '[redacted]', 'ssh', 'host'],
      ['curl', '-H', 'X-Vault-Token: [redacted]', 'https://vault'],
    ]);
  });
});

describe('tool approvals in the audit log', { timeout: 120_000 }, () => {
  let fake: FakeAnthropic;
  let claude: TestService;
  let close: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    ({ fake, svc: claude, close } = await startClaudeService());
  });
  afterAll(async () => {
    await close?.();
  });

  it('hold no secret from the command Claude wanted to run', async () => {
    const command = `curl -H 'Authorization: Bearer BEARERVALUE1' 'https://alice:hunter2pass@example.org/?token=TOKENVALUE1'`;
    fake.script(() => toolUse('Bash', { command, description: 'a test command' }, text('Done.')));
    const events = claude.service.core.chat.run(
      {
        model: 'assistant',
        sessionKey: 'telegram:42',
        messages: [{ role: 'user', content: 'fetch it' }],
        source: 'telegram',
        approve: async () => ({ behavior: 'deny', message: 'No.' }),
      },
      new AbortController().signal,
    );
    expect((await collect(events)).filter((e) => e.type === 'approval')).toHaveLength(1);
    const rows = claude.service.core.db
      .prepare<[], { args: string }>("SELECT args FROM audit WHERE tool = 'approval:Bash'")
      .all();
    expect(rows).toHaveLength(1);
    for (const secret of SECRETS) expect(rows[0]?.args).not.toContain(secret);
    expect(JSON.parse(rows[0]?.args ?? '{}').summary).toBe(
      "curl -H 'Authorization: [redacted]' 'https://[redacted]@example.org/?token=[redacted]'",
    );
  });

  it('hold no private key Claude wanted to write, though the question shows the content', async () => {
    const key = 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW';
    const content = `-----BEGIN OPENSSH PRIVATE KEY-----\n${key}\n-----END OPENSSH PRIVATE KEY-----\n`;
    const file = path.join(claude.dir, 'id_ed25519');
    fake.script(() => toolUse('Write', { file_path: file, content }, text('Done.')));
    const asked: string[] = [];
    const events = claude.service.core.chat.run(
      {
        model: 'assistant',
        sessionKey: 'telegram:43',
        messages: [{ role: 'user', content: 'write my key' }],
        source: 'telegram',
        approve: async (r) => {
          asked.push(r.summary);
          return { behavior: 'deny', message: 'No.' };
        },
      },
      new AbortController().signal,
    );
    await collect(events);
    // The approver is shown the key (what they would allow); the audit row keeps the file alone.
    expect(asked[0]).toContain(key);
    const rows = claude.service.core.db
      .prepare<[], { args: string }>("SELECT args FROM audit WHERE tool = 'approval:Write'")
      .all();
    expect(rows).toHaveLength(1);
    expect(rows[0]?.args).not.toContain(key.slice(0, 20));
    expect(JSON.parse(rows[0]?.args ?? '{}').summary).toBe(`${file}\n+ [redacted]`);
  });
});

describe('log lines', () => {
  it('hold no secret, whether in a field, a URL or the message', () => {
    const lines: string[] = [];
    const logger = createLogger(
      'info',
      new Writable({
        write(chunk: Buffer, _enc, done) {
          lines.push(chunk.toString('utf8'));
          done();
        },
      }),
    );
    logger.info(
      {
        url: '/api/read_file?token=TOKENVALUE1&q=visible',
        upstream: 'https://alice:hunter2pass@example.org/',
        headers: { 'x-api-key': 'APIKEYVALUE1', cookie: 'session=KEYVALUE1' },
      },
      `getMe failed for https://api.telegram.org/bot${TELEGRAM_TOKEN}/getMe with Bearer BEARERVALUE1`,
    );
    logger.warn({ err: new Error('token bst_0123456789abcdefghijklmnopqrstuv was refused') }, 'refused');
    const text = lines.join('');
    for (const secret of [...SECRETS, TELEGRAM_TOKEN, 'bst_0123456789abcdefghijklmnopqrstuv']) {
      expect(text).not.toContain(secret);
    }
    // Still one JSON object per line, and what is not secret is kept.
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records[0]?.url).toBe('/api/read_file?token=[redacted]&q=visible');
    expect(records[1]?.msg).toBe('refused');
  });
});
