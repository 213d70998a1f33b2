import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatOutbox } from '../handlers/telegram/route/outbox.js';
import {
  type ClaudeTestEnv,
  claudeTestEnv,
  type FakeAnthropic,
  startFakeAnthropic,
  text,
  toolUse,
} from './fakes/anthropic.js';
import { CLAUDE_BIN } from './helpers/service.js';
import { type Harness, startHarness } from './telegram-harness.js';

/**
 * Files back: the real `claude` CLI, told in its system prompt where its
 * per-chat outbox is, writes two files there with its Write tool (scripted by
 * the fake Messages API); after the answer the chat gets the image as a photo
 * and the text as a document, and the outbox is empty again.
 */

const CHAT = 112;
let fake: FakeAnthropic;
let cli: ClaudeTestEnv;
let h: Harness;

beforeAll(async () => {
  fake = await startFakeAnthropic();
  cli = await claudeTestEnv(fake.url);
  h = await startHarness({
    env: { CLAUDE_BIN },
    config: {
      defaultMode: 'assistant',
      modes: { assistant: { kind: 'claude', allowedTools: ['Write'] } },
      claude: { env: cli.env, maxRetries: 0 },
    },
  });
});
afterAll(async () => {
  await h?.close();
  await fake?.close();
  await cli?.cleanup();
});

const PNG = 'PNG chart bytes (fake image)';
const REPORT = 'Quarterly report\nAll good.\n';

describe('the outbox', () => {
  it('files Claude writes into its outbox reach the chat as a photo and a document; the outbox is emptied', async () => {
    const outbox = chatOutbox(h.service.core.config.dataDir, CHAT, undefined);
    // Left there before the turn: a symlink to a file outside, which must never be sent.
    const secret = path.join(h.dir, 'secret.txt');
    await writeFile(secret, 'do not send');
    await mkdir(outbox, { recursive: true });
    await symlink(secret, path.join(outbox, 'leak.png'));

    let systemPrompt = '';
    fake.script((req) => {
      systemPrompt = JSON.stringify(req.body?.system ?? '');
      const dir = /directly into the folder (\S+) is sent to the user/.exec(systemPrompt)?.[1] ?? 'no-outbox';
      return toolUse(
        'Write',
        { file_path: path.join(dir, 'chart.png'), content: PNG },
        toolUse('Write', { file_path: path.join(dir, 'report.txt'), content: REPORT }, text('Sent both.')),
      );
    });
    h.tg.user(CHAT).says('send me the chart and the report');

    const doc = await h.tg.waitFor(() => h.tg.botMessages(CHAT).find((m) => m.document), {
      timeoutMs: 60_000,
    });
    expect(systemPrompt).toContain(outbox);
    const photo = h.tg.botMessages(CHAT).find((m) => m.photo);
    expect(photo?.photo?.fileName).toBe('chart.png');
    expect(Buffer.from(photo?.photo?.bytes ?? []).toString()).toBe(PNG);
    expect(doc.document?.fileName).toBe('report.txt');
    expect(Buffer.from(doc.document?.bytes ?? []).toString()).toBe(REPORT);
    // After the answer, in the order written; nothing else was sent as a file.
    const answer = h.tg.botMessages(CHAT).find((m) => m.text.includes('Sent both.'));
    expect(answer).toBeDefined();
    expect(photo?.messageId).toBeGreaterThan(answer?.messageId ?? Infinity);
    expect(doc.messageId).toBeGreaterThan(photo?.messageId ?? Infinity);
    expect(h.tg.botMessages(CHAT).filter((m) => m.photo || m.document)).toHaveLength(2);
    for (const c of [...h.tg.callsOf('sendPhoto', CHAT), ...h.tg.callsOf('sendDocument', CHAT)]) {
      expect(JSON.stringify(c.params)).not.toContain('do not send');
    }

    await h.tg.waitFor(() => existsSync(outbox) && readdirSync(outbox).length === 0);
    expect(readFileSync(secret, 'utf8')).toBe('do not send');
  });
});
