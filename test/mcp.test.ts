import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ClaudeTestEnv,
  claudeTestEnv,
  type FakeAnthropic,
  startFakeAnthropic,
  text,
  toolUse,
} from './fakes/anthropic.js';
import { CLAUDE_BIN, startTestService, type TestService } from './helpers/service.js';

let svc: TestService;
let fake: FakeAnthropic;
let cli: ClaudeTestEnv;
let repo: string;
const clients: Client[] = [];

async function connect(token: string | undefined): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(`${svc.url}/mcp`), {
    requestInit: token === undefined ? {} : { headers: { Authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: 'brainstem-test', version: '1.0.0' });
  await client.connect(transport);
  clients.push(client);
  return client;
}

beforeAll(async () => {
  repo = mkdtempSync(path.join(tmpdir(), 'bst-mcp-'));
  execFileSync('git', ['init', '-q', '-b', 'main'], { cwd: repo });
  writeFileSync(path.join(repo, 'Makefile'), 'progress:\n\t@echo one; sleep 0.2; echo two\n');
  fake = await startFakeAnthropic();
  cli = await claudeTestEnv(fake.url);
  svc = await startTestService({
    parts: { tools: true },
    config: {
      claude: { bin: CLAUDE_BIN, env: cli.env, maxRetries: 0 },
      server: { modeTag: false },
      tools: { git: { repo }, make: { targets: ['progress'] } },
    },
  });
});

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await svc?.close();
  await fake?.close();
  await cli?.cleanup();
  rmSync(repo, { recursive: true, force: true });
});

describe('/mcp with the MCP SDK client', () => {
  it('refuses a client without the token, or with a wrong one', async () => {
    await expect(connect(undefined)).rejects.toThrow(/401|nauthorized/);
    await expect(connect('wrong-token-0123456789')).rejects.toThrow(/401|nauthorized/);
  });

  it('lists the registry tools with their input schemas', async () => {
    const client = await connect(svc.token);
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    expect(names).toEqual(
      expect.arrayContaining(['git_status', 'make_target', 'read_file', 'web_fetch', 'self_upgrade']),
    );
    const make = tools.find((t) => t.name === 'make_target');
    expect(make?.inputSchema).toMatchObject({ type: 'object', required: ['target'] });
    expect(make?.annotations?.readOnlyHint).toBe(false);
    expect(tools.find((t) => t.name === 'git_log')?.annotations?.readOnlyHint).toBe(true);
  });

  it('calls a tool and audits the call as coming from mcp', async () => {
    const client = await connect(svc.token);
    const r = await client.callTool({ name: 'git_status', arguments: {} });
    expect(r.isError).toBe(false);
    expect((r.content as { type: string; text: string }[])[0]?.text).toContain('## No commits yet on main');
    const audit = svc.service.core.db
      .prepare('SELECT tool, caller, ok FROM audit ORDER BY id DESC LIMIT 1')
      .get();
    expect(audit).toEqual({ tool: 'git_status', caller: 'mcp', ok: 1 });
  });

  it('returns a refusal as a tool error the model can read', async () => {
    const client = await connect(svc.token);
    const r = await client.callTool({ name: 'make_target', arguments: { target: 'deploy' } });
    expect(r.isError).toBe(true);
    expect((r.content as { text: string }[])[0]?.text).toContain('make target "deploy" is not allowed');
    const invalid = await client.callTool({ name: 'git_log', arguments: { max: 'many' } });
    expect(invalid.isError).toBe(true);
    expect((invalid.content as { text: string }[])[0]?.text).toContain('git_log: max:');
  });

  it('sends command output as progress notifications while it runs', async () => {
    const client = await connect(svc.token);
    const progress: string[] = [];
    const r = await client.callTool({ name: 'make_target', arguments: { target: 'progress' } }, undefined, {
      onprogress: (p) => progress.push(p.message ?? ''),
    });
    expect(r.isError).toBe(false);
    expect(progress).toEqual(['one\n', 'two\n']);
  });
});

describe('the real claude CLI using brainstem tools over /mcp', () => {
  it('completes a round trip: tool_use → /mcp → tool_result → answer', async () => {
    fake.script(() => toolUse('mcp__brainstem__git_status', {}, text('The repository has no commits yet.')));
    const r = await svc.client.chat.completions.create({
      model: 'assistant',
      messages: [{ role: 'user', content: 'what is the git status?' }],
    });
    expect(r.choices[0]?.message.content).toContain('The repository has no commits yet.');
    const main = fake.mainRequests();
    const offered = (main[0]?.body?.tools ?? []).map((t) => (t as { name: string }).name);
    expect(offered).toContain('mcp__brainstem__git_status');
    const last = main.at(-1);
    expect(last?.toolResults).toHaveLength(1);
    expect(last?.toolResults[0]?.isError).toBe(false);
    expect(last?.toolResults[0]?.content).toContain('## No commits yet on main');
    const audit = svc.service.core.db
      .prepare("SELECT caller, ok FROM audit WHERE tool = 'git_status' ORDER BY id DESC LIMIT 1")
      .get();
    expect(audit).toEqual({ caller: 'mcp', ok: 1 });
  }, 60_000);
});
