import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import OpenAI from 'openai';
import { faces } from '../../handlers/index.js';
import { type Config, loadConfig } from '../../src/config.js';
import { createLogger, type Logger } from '../../src/logger.js';
import { type PartChoice, type Service, startService } from '../../src/service.js';
import { claudeTestEnv, type FakeAnthropic, startFakeAnthropic } from '../fakes/anthropic.js';

/** brainstem as main wires it, with the HTTP face's fastify instance for the tests that read its routes. */
export interface WiredService extends Service {
  app: FastifyInstance;
}

/**
 * Starts what `brainstem serve` starts (src/service.ts with the faces of
 * handlers/index.ts, as src/main.ts hands them), with only the parts a test
 * picks: none by default, so a test pays only for what it exercises.
 */
export async function startWired(
  config: Config,
  logger: Logger,
  parts: PartChoice = {},
  hooks: StartHooks = {},
): Promise<WiredService> {
  let app: FastifyInstance | undefined;
  let url: string | undefined;
  const service = await startService(config, logger, {
    parts,
    faces: {
      bot: async (core, tools) => {
        if (hooks.beforeBot) {
          if (!url)
            throw new Error('beforeBot: this bot is built before the server listens (the front is on)');
          await hooks.beforeBot(url);
        }
        return faces.bot(core, tools);
      },
      http: async (core, tools, bot) => {
        const face = await faces.http(core, tools, bot);
        app = face.app;
        return {
          ...face,
          listen: async () => {
            const port = await face.listen();
            url = `http://127.0.0.1:${port}`;
            hooks.atListen?.(url);
            return port;
          },
        };
      },
    },
  });
  if (!app) throw new Error('the HTTP face was not built');
  return { ...service, app };
}

/** Where a test steps into the start, with the server's URL. */
export interface StartHooks {
  /** Right after listen, before the service waits for its first answer (synchronous: nothing else runs). */
  atListen?: (url: string) => void;
  /** Before the bot is built, when it is built after listen (the front off). */
  beforeBot?: (url: string) => Promise<void>;
}

export interface TestService {
  service: WiredService;
  url: string;
  token: string;
  dir: string;
  /** The openai SDK pointed at our endpoint, no retries (a retry would hide an error). */
  client: OpenAI;
  close(): Promise<void>;
}

import { CLAUDE_BIN } from './claude-bin.js';

export { CLAUDE_BIN };

/**
 * Starts the real service in this process on a free loopback port, with its
 * config file and data dir in a fresh temp dir. `config` is brainstem.json.
 */
export async function startTestService(
  opts: {
    config?: Record<string, unknown>;
    env?: Record<string, string>;
    parts?: PartChoice;
    dir?: string;
    /** Default: silent (TEST_LOG_LEVEL to see it). */
    logger?: Logger;
  } = {},
): Promise<TestService> {
  const dir = opts.dir ?? mkdtempSync(path.join(tmpdir(), 'bst-svc-'));
  const file = path.join(dir, 'brainstem.json');
  const server = { port: 0, ...((opts.config?.server as object) ?? {}) };
  // The default Claude modes exist; unless the test names a CLI, a missing binary makes their
  // probes fail fast, instead of a real `claude auth status` (seconds of CPU) per service.
  const claude = { bin: path.join(dir, 'no-claude'), ...((opts.config?.claude as object) ?? {}) };
  writeFileSync(file, JSON.stringify({ dataDir: path.join(dir, 'data'), ...opts.config, server, claude }));
  const config = loadConfig({ BRAINSTEM_CONFIG: file, HOME: dir, ...opts.env }, dir);
  const service = await startWired(
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

/**
 * The service with Claude modes on the real CLI against a fresh fake Messages
 * API; close() ends all three. `config` is more of brainstem.json: its
 * `claude` and `server` add to the helper's (the CLI, no retries, no mode tag);
 * `logger` and `parts` as in startTestService.
 */
export async function startClaudeService(
  opts: {
    auth?: 'api-key' | 'oauth';
    /** More of the CLI's environment (e.g. PRICED_MODEL). */
    env?: Record<string, string>;
    config?: Record<string, unknown>;
    logger?: Logger;
    parts?: PartChoice;
  } = {},
): Promise<{
  fake: FakeAnthropic;
  svc: TestService;
  close(): Promise<void>;
}> {
  const fake = await startFakeAnthropic();
  const cli = await claudeTestEnv(fake.url, { auth: opts.auth ?? 'api-key' });
  const { claude, server, ...rest } = opts.config ?? {};
  const svc = await startTestService({
    logger: opts.logger,
    parts: opts.parts,
    config: {
      ...rest,
      claude: {
        bin: CLAUDE_BIN,
        env: { ...cli.env, ...opts.env },
        maxRetries: 0,
        ...(claude as object | undefined),
      },
      server: { modeTag: false, ...(server as object | undefined) },
    },
  });
  return {
    fake,
    svc,
    async close() {
      await svc.close();
      await fake.close();
      await cli.cleanup();
    },
  };
}
