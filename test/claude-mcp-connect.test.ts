/**
 * How the real `claude` CLI reaches brainstem's /mcp, and what brainstem says when it does not:
 * the CLI starts a turn without an MCP server it could not connect to, and says so only in its
 * init line.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exemptFromProxy } from '../brains/claude-code/env.js';
import { type FakeAnthropic, text, toolUse } from './fakes/anthropic.js';
import { type LogRecord, recordingLogger } from './helpers/logs.js';
import { startClaudeService, type TestService } from './helpers/service.js';

let svc: TestService;
let fake: FakeAnthropic;
let close: () => Promise<void>;
let repo: string;
const { logger, logs } = recordingLogger('info');

/**
 * The owner's HTTP proxy, as brainstem's environment names it to the CLI (HTTP_PROXY, with only
 * `localhost` exempt, as often set): it forwards what it is sent and records each request's URL.
 */
const proxied: string[] = [];
const proxy = http.createServer((req, res) => {
  proxied.push(req.url ?? '');
  const target = new URL(req.url ?? '');
  const upstream = http.request(
    {
      host: target.hostname,
      port: target.port,
      path: target.pathname + target.search,
      method: req.method,
      headers: req.headers,
    },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', () => res.destroy());
  req.pipe(upstream);
});

beforeAll(async () => {
  repo = mkdtempSync(path.join(tmpdir(), 'bst-mcp-connect-'));
  execFileSync('git', ['init', '-q', '-b', 'main'], { cwd: repo });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  ({ fake, svc, close } = await startClaudeService({
    logger,
    parts: { tools: true },
    env: { HTTP_PROXY: proxyUrl, HTTPS_PROXY: proxyUrl, no_proxy: 'localhost' },
    config: { tools: { git: { repo } } },
  }));
});

afterAll(async () => {
  await close?.();
  proxy.closeAllConnections();
  proxy.close();
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
  it('reaches /mcp straight, never through the owner’s HTTP proxy (brainstem’s token would go with it)', async () => {
    const result = await gitStatusTurn('assistant');
    expect(result).toMatchObject({ isError: false, content: expect.stringContaining('No commits yet') });
    // The CLI uses the proxy (its Messages API calls went through it), but not for brainstem's own address.
    expect(proxied.some((u) => u.includes('/v1/messages'))).toBe(true);
    expect(proxied.filter((u) => u.includes('/mcp'))).toEqual([]);
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

describe('brainstem’s address exempt from the owner’s proxy', () => {
  const url = 'http://127.0.0.1:8080/mcp';

  it('keeps the owner’s exemptions of both spellings, in both, and adds brainstem’s host and port', () => {
    expect(
      exemptFromProxy(
        { HTTPS_PROXY: 'http://proxy:3128', NO_PROXY: 'localhost', no_proxy: '.corp, 10.0.0.0/8' },
        url,
      ),
    ).toMatchObject({
      NO_PROXY: 'localhost,.corp,10.0.0.0/8,127.0.0.1:8080',
      no_proxy: 'localhost,.corp,10.0.0.0/8,127.0.0.1:8080',
    });
  });

  it('changes nothing without a proxy, or when brainstem is exempt already', () => {
    const none = { PATH: '/bin' };
    expect(exemptFromProxy(none, url)).toBe(none);
    // A blank value turns a variable off (claude.env's way to unset one).
    const blank = { HTTP_PROXY: '' };
    expect(exemptFromProxy(blank, url)).toBe(blank);
    const all = { HTTP_PROXY: 'http://proxy:3128', no_proxy: '*' };
    expect(exemptFromProxy(all, url)).toBe(all);
    // Before the server listens there is no /mcp to exempt.
    const early = { HTTP_PROXY: 'http://proxy:3128' };
    expect(exemptFromProxy(early, '')).toBe(early);
  });
});
