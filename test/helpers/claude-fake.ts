/**
 * The real Claude CLI against the fake Messages API for the tests of a file (or of a describe
 * block), started and closed by its hooks:
 *
 *   const claude = claudeOnFake({ auth: 'oauth' });
 *   let h: Harness;
 *   beforeAll(async () => { h = await startClaudeHarness(claude.cli.env); });
 *   afterAll(async () => { await h?.close(); });
 *   it('…', async () => { claude.fake.script(() => text('hi')); … });
 *
 * Not in test/fakes/anthropic.ts: the benches and scripts import that module outside vitest.
 */
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import {
  type ClaudeTestEnv,
  claudeTestEnv,
  type FakeAnthropic,
  type Script,
  startFakeAnthropic,
  text,
  toolUse,
} from '../fakes/anthropic.js';

export interface ClaudeOnFake {
  /** The fake Messages API; throws when read before the set-up hook has run (as the file loads). */
  readonly fake: FakeAnthropic;
  /** The CLI's environment pointed at `fake`, with its temporary HOME; throws likewise. */
  readonly cli: ClaudeTestEnv;
}

export interface ClaudeOnFakeOptions {
  auth?: 'api-key' | 'oauth';
  /** The fake's script from the start, for a file that starts its service with the hooks. */
  script?: Script;
  /** A fresh fake and HOME for each test (beforeEach/afterEach): no test sees another's requests or sessions. */
  perTest?: boolean;
}

/**
 * Starts the fake and makes the CLI's environment in a beforeAll, closes and removes them in an
 * afterAll (both scoped to the describe block it is called in, if any). Call it before the hooks
 * that use it: vitest runs the after hooks in reverse (its default `sequence.hooks: 'stack'`), so a
 * service the file starts on `cli.env` is stopped before its fake goes.
 */
export function claudeOnFake(opts: ClaudeOnFakeOptions = {}): ClaudeOnFake {
  let fake: FakeAnthropic | undefined;
  let cli: ClaudeTestEnv | undefined;
  const [setUp, tearDown] = opts.perTest ? [beforeEach, afterEach] : [beforeAll, afterAll];
  setUp(async () => {
    fake = await startFakeAnthropic();
    if (opts.script) fake.script(opts.script);
    cli = await claudeTestEnv(fake.url, { auth: opts.auth });
  });
  tearDown(async () => {
    await fake?.close();
    await cli?.cleanup();
  });
  return {
    get fake() {
      return started(fake);
    },
    get cli() {
      return started(cli);
    },
  };
}

function started<T>(handle: T | undefined): T {
  if (handle === undefined) throw new Error('claudeOnFake: read before its set-up hook ran');
  return handle;
}

/**
 * The fake's answer to every message: ask to run `touch <its words>.txt` with Bash (outside the
 * assistant mode's allow-list, so the owner is asked), then say "Done.".
 */
export const touchWithBash =
  (description = 'Create the file') =>
  (req: Parameters<Script>[0]) =>
    toolUse('Bash', { command: `touch ${req.lastUserTurn}.txt`, description }, text('Done.'));
