/**
 * How the real `claude` CLI reaches brainstem's /mcp, and what brainstem says when it does not:
 * the CLI starts a turn without an MCP server it could not connect to, and says so only in its
 * init line.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeAnthropic, text, toolUse } from './fakes/anthropic.js';
import { type LogRecord, recordingLogger } from './helpers/logs.js';
import { startClaudeService, type TestService } from './helpers/service.js';

let svc: TestService;
let fake: FakeAnthropic;
let close: () => Promise<void>;
let repo: string;
const { logger, logs } = recordingLogger('info');

beforeAll(async () => {
  repo = mkdtempSync(path.join(tmpdir(), 'bst-mcp-connect-'));
  execFileSync('git', ['init', '-q', '-b', 'main'], { cwd: repo });
  ({ fake, svc, close } = await startClaudeService({
    logger,
    parts: { tools: true },
    config: { tools: { git: { repo } } },
  }));
});

afterAll(async () => {
  await close?.();
  rmSync(repo, { recursive: true, force: true });
});

const noToolsWarnings = (mode: string) =>
  logs.filter(
    (l: LogRecord) =>
      l.level === 40 && l.mode === mode && String(l.msg).startsWith('Claude Code is not connected'),
  );

/** A turn of `mode` over the OpenAI endpoint whose model calls git_status. */
async function gitStatusTurn(mode: string) {
  fake.script(() => toolUse('mcp__brainstem__git_status', {}, text('Done.')));
  const r = await svc.client.chat.completions.create({
    model: mode,
    messages: [{ role: 'user', content: 'what does the repository look like' }],
  });
  expect(r.choices[0]?.message.content).toContain('Done.');
  return fake.mainRequests().at(-1)?.toolResults[0];
}

describe('the claude CLI connecting to /mcp', () => {
  it('says nothing when the CLI is connected and the tool runs', async () => {
    const result = await gitStatusTurn('assistant');
    expect(result).toMatchObject({ isError: false, content: expect.stringContaining('No commits yet') });
    expect(noToolsWarnings('assistant')).toEqual([]);
  }, 60_000);

  it('warns, with what to look at, when the CLI runs a turn without brainstem’s tools', async () => {
    // A refusal of the CLI's handshake (here its token is not brainstem's): the CLI starts the turn
    // without the server, and its model finds no such tool.
    const { mcp } = svc.service.core;
    const token = mcp.token;
    mcp.token = 'not-the-brainstem-token-0123456789';
    try {
      const result = await gitStatusTurn('anklume');
      expect(result).toMatchObject({ isError: true, content: expect.stringContaining('No such tool') });
    } finally {
      mcp.token = token;
    }
    expect(noToolsWarnings('anklume')).toEqual([
      expect.objectContaining({
        mcpStatus: 'failed',
        msg: expect.stringContaining("this turn runs without brainstem's tools"),
      }),
    ]);
  }, 60_000);
});
