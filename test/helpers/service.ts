import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { loadConfig } from '../../src/config.js';
import { createLogger, type Logger } from '../../src/logger.js';
import { type Part, type Service, startService } from '../../src/service.js';

export interface TestService {
  service: Service;
  url: string;
  token: string;
  dir: string;
  /** The openai SDK pointed at our endpoint, no retries (a retry would hide an error). */
  client: OpenAI;
  close(): Promise<void>;
}

export const CLAUDE_BIN = path.resolve('node_modules/.bin/claude');

/**
 * Starts the real service in this process on a free loopback port, with its
 * config file and data dir in a fresh temp dir. `config` is brainstem.json.
 */
export async function startTestService(
  opts: {
    config?: Record<string, unknown>;
    env?: Record<string, string>;
    parts?: Part[];
    dir?: string;
    /** Default: silent (TEST_LOG_LEVEL to see it). */
    logger?: Logger;
  } = {},
): Promise<TestService> {
  const dir = opts.dir ?? mkdtempSync(path.join(tmpdir(), 'bst-svc-'));
  const file = path.join(dir, 'brainstem.json');
  const server = { port: 0, ...((opts.config?.server as object) ?? {}) };
  writeFileSync(file, JSON.stringify({ dataDir: path.join(dir, 'data'), ...opts.config, server }));
  const config = loadConfig({ BRAINSTEM_CONFIG: file, HOME: dir, ...opts.env }, dir);
  const service = await startService(
    config,
    opts.logger ?? createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'),
    opts.parts,
  );
  const token = service.core.apiToken.token;
  const client = new OpenAI({ baseURL: `${service.url}/v1`, apiKey: token, maxRetries: 0, timeout: 20_000 });
  return {
    service,
    url: service.url,
    token,
    dir,
    client,
    close: async () => {
      await service.stop(1000);
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
