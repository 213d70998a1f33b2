/**
 * What the gateway stage's checks share: who writes where, OpenClaw's gateway
 * (started, stopped, its log), waiting on the emulator, scripting the model's
 * next answer, and reading what a model request asked.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readSync } from 'node:fs';
import { watch } from 'node:fs/promises';
import path from 'node:path';
import type { FakeReply, FakeRequest } from '../../../test/fakes/llama.js';
import type { FakeMessage, FakeTelegram, FakeUser } from '../../../test/fakes/telegram.js';
import {
  type CheckFn,
  killGroup,
  logTail,
  type OpenClaw,
  openclawEnv,
  type ScriptedLlama,
} from '../shared.js';

/** The one user, in a private chat; on brainstem's and OpenClaw's allow-lists. */
export const USER = 4242;
/** A supergroup the user and the bot are in. */
export const GROUP = -1001234567890;
/** A forum supergroup, where the user writes in a topic; OpenClaw answers there without a mention. */
export const FORUM = -1009876543210;
export const TOPIC = 7;
/** The upstream model name of brainstem's second llama mode, `helper`. */
export const HELPER_MODEL = 'helper-model';
/** The gateway takes ~15 s to poll here and its first turn ~10 s (a loaded machine more); later turns 2-4 s. */
export const FIRST_WAIT_MS = 180_000;
export const WAIT_MS = 90_000;

/**
 * OpenClaw's file log (`logging.file`, at `debug`, as index.ts writes openclaw.json): the only
 * place that says when it is done with a message, its reply delivered and settled.
 */
export const gatewayLogFile = (dir: string) => path.join(dir, 'openclaw-gateway.log');

export interface Gateway {
  tg: FakeTelegram;
  llama: ScriptedLlama;
  check: CheckFn;
  /** The user in the private chat, and the bot's messages there. */
  user: FakeUser;
  bot(): FakeMessage[];
  /** What `test` returns once it holds, or undefined after `ms`; throws if the gateway exits first. */
  until<T>(what: string, test: () => T | undefined | false | null, ms?: number): Promise<T | undefined>;
  /** The model's next answer; a reply an earlier check left unused goes. */
  answer(reply: FakeReply): void;
  /** Everything OpenClaw's gateway wrote so far, across its starts. */
  log(): string;
  /**
   * Whether OpenClaw's file log says it has processed the user's message `messageId` in the
   * private chat (its reply delivered and settled) within `ms`.
   */
  processed(messageId: number, ms?: number): Promise<boolean>;
  /** Stops the gateway (SIGTERM, SIGKILL 20 s later) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again. */
  start(): void;
}

export interface GatewayOptions {
  tg: FakeTelegram;
  llama: ScriptedLlama;
  check: CheckFn;
  openclaw: OpenClaw;
  /** Its working directory, and its HOME. */
  dir: string;
  home: string;
  port: number;
  defer(stop: () => Promise<void> | void): void;
}

/** OpenClaw's gateway, started. */
export function startGateway(o: GatewayOptions): Gateway {
  let log = '';
  const spawnGateway = () => {
    const child = spawn(o.openclaw.node24, [o.openclaw.entry, 'gateway', 'run', '--port', String(o.port)], {
      cwd: o.dir,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: openclawEnv(o.openclaw, o.home),
    });
    o.defer(() => killGroup(child));
    const append = (d: Buffer) => {
      log += d.toString();
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    return { child, exited: once(child, 'exit').then(([code]) => code as number | null) };
  };
  let gateway: { child: ChildProcess; exited: Promise<number | null> } = spawnGateway();
  return {
    tg: o.tg,
    llama: o.llama,
    check: o.check,
    user: o.tg.user(USER),
    bot: () => o.tg.botMessages(USER),
    until: (what, test, ms = WAIT_MS) => waitOrExit(o.tg, gateway.exited, () => log, what, test, ms),
    answer: (reply) => {
      o.llama.queue.length = 0;
      o.llama.queue.push(reply);
    },
    log: () => log,
    processed: (messageId, ms = WAIT_MS) =>
      logHolds(
        gatewayLogFile(o.dir),
        `message processed: channel=telegram chatId=telegram:${USER} messageId=${messageId} `,
        ms,
      ),
    stop: async () => {
      killGroup(gateway.child, 'SIGTERM');
      const killer = setTimeout(() => killGroup(gateway.child), 20_000);
      await gateway.exited;
      clearTimeout(killer);
    },
    start: () => {
      gateway = spawnGateway();
    },
  };
}

type Message = { role: string; content?: unknown };

/**
 * A message's text (the string, or its text parts), leaving out OpenClaw's internal
 * context: data it appends to a turn, the chat's recent messages among it, which are
 * not what the user asked in that turn.
 */
export function textOf(m: Message): string[] {
  const texts =
    typeof m.content === 'string'
      ? [m.content]
      : Array.isArray(m.content)
        ? m.content.flatMap((p: { type?: string; text?: string }) =>
            p.type === 'text' && p.text ? [p.text] : [],
          )
        : [];
  return texts.filter((t) => !t.startsWith('<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>'));
}

export const messagesOf = (body: unknown) => (body as { messages?: Message[] } | undefined)?.messages ?? [];

/** The texts of a model request's user messages. */
export function userTexts(r: FakeRequest): string[] {
  return messagesOf(r.body)
    .filter((m) => m.role === 'user')
    .flatMap(textOf);
}

/** The texts of the user messages after the last assistant message: what this turn asks. */
export function newTurnTexts(body: unknown): string[] {
  const messages = messagesOf(body);
  const last = messages.map((m) => m.role).lastIndexOf('assistant');
  return messages
    .slice(last + 1)
    .filter((m) => m.role === 'user')
    .flatMap(textOf);
}

export type Button = { text: string; callback_data?: string };

/** A message's inline buttons, row after row. */
export const buttonsOf = (m: { replyMarkup?: unknown } | undefined): Button[] =>
  ((m?.replyMarkup as { inline_keyboard?: Button[][] } | undefined)?.inline_keyboard ?? []).flat();

/**
 * Waits for `test` to hold on the emulator (re-checked after every Bot API call). After `ms`
 * it says so with the end of the gateway's log and gives undefined, for the check to fail;
 * a gateway that exits first ends the stage.
 */
async function waitOrExit<T>(
  tg: FakeTelegram,
  exited: Promise<number | null>,
  log: () => string,
  what: string,
  test: () => T | undefined | false | null,
  ms: number,
): Promise<T | undefined> {
  const seen = tg.waitFor(test, { timeoutMs: ms }).then(
    (value) => ({ value }),
    () => undefined,
  );
  const result = await Promise.race([seen, exited.then((code) => ({ code }))]);
  if (result && 'code' in result) {
    throw new Error(`OpenClaw's gateway exited (${result.code}) before ${what}: ${logTail(log(), 8, 1500)}`);
  }
  if (result === undefined) {
    process.stdout.write(
      `(no ${what} within ${ms / 1000} s; the gateway's log ends: ${logTail(log(), 8, 1500)})\n`,
    );
  }
  return result?.value;
}

/** Whether `file` holds `text` within `ms`: read again from where it was each time its folder changes. */
async function logHolds(file: string, text: string, ms: number): Promise<boolean> {
  let offset = 0;
  let tail = '';
  const holds = () => {
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch {
      return false; // not written yet
    }
    try {
      const chunk = Buffer.alloc(1 << 16);
      for (
        let n = readSync(fd, chunk, 0, chunk.length, offset);
        n > 0;
        n = readSync(fd, chunk, 0, chunk.length, offset)
      ) {
        offset += n;
        // Kept across reads: a line may be cut between two.
        tail = (tail + chunk.subarray(0, n).toString('latin1')).slice(-(text.length + chunk.length));
        if (tail.includes(text)) return true;
      }
      return false;
    } finally {
      closeSync(fd);
    }
  };
  const stop = AbortSignal.timeout(ms);
  try {
    if (holds()) return true;
    for await (const _ of watch(path.dirname(file), { signal: stop })) if (holds()) return true;
  } catch (err) {
    if (!stop.aborted) throw err;
  }
  return false;
}
