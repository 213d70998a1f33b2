import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeWeb, startFakeWeb } from './fakes/web.js';
import { type ServiceProcess, spawnService } from './helpers/process.js';

/**
 * web_fetch's memory, measured on brainstem as pm2 runs it (its own process, from the build): pm2
 * restarts it past `max_memory_restart` (ecosystem.config.cjs), cutting every chat's turn.
 */

const TOKEN = 'web-fetch-memory-test-token';
const MB = 1024 * 1024;

let dir: string;
let web: FakeWeb;
let svc: ServiceProcess;

/** The most resident memory the process has had (Linux's VmHWM), in bytes. */
function peakResident(pid: number): number {
  const line = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!line) throw new Error('no VmHWM in /proc/<pid>/status');
  return Number(line[1]) * 1024;
}

/** pm2's `max_memory_restart` in ecosystem.config.cjs, in bytes. */
function pm2RestartLine(): number {
  const m = /max_memory_restart:\s*'(\d+)M'/.exec(readFileSync('ecosystem.config.cjs', 'utf8'));
  if (!m) throw new Error('no max_memory_restart in ecosystem.config.cjs');
  return Number(m[1]) * MB;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'bst-webmem-'));
  web = await startFakeWeb();
  const file = path.join(dir, 'brainstem.json');
  writeFileSync(
    file,
    JSON.stringify({
      dataDir: path.join(dir, 'data'),
      // A long limit: the page must be read as far as the reader goes, not cut short by a busy machine.
      tools: { webFetch: { allowPrivate: ['127.0.0.1'], timeoutMs: 60_000 } },
    }),
  );
  svc = await spawnService({
    BRAINSTEM_CONFIG: file,
    HOME: dir,
    BRAINSTEM_API_TOKEN: TOKEN,
    CLAUDE_BIN: path.join(dir, 'no-claude'),
  });
});

afterAll(async () => {
  await svc?.stop();
  await web?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('web_fetch memory', () => {
  it('reads a flat 2 MB page of 400,000 elements as its text, the process staying under pm2’s restart line', async () => {
    const pid = svc.child.pid;
    if (pid === undefined) throw new Error('no pid');
    const res = await fetch(`${svc.url}/api/web_fetch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url: `${web.url}/many?n=400000`, maxChars: 500 }),
    });
    // biome-ignore lint/suspicious/noExplicitAny: read by path; a wrong path fails the assertion.
    const body = (await res.json()) as Record<string, any>;
    expect(res.status).toBe(200);
    // Parsed into a DOM, the page alone held some 350 MB of heap.
    expect(peakResident(pid)).toBeLessThan(pm2RestartLine());
    // Its whole text, read from its tags, at once (not its whole text at the time limit, without its title).
    expect(body.data.title).toBe('Many');
    expect(body.output).toMatch(/^a\na\na\n/);
  }, 180_000);
});
