/**
 * `npm run bench`: brainstem against fakes on loopback, every figure a ratio or
 * a difference against a reference taken in the same run (CI machines are
 * noisy; absolute numbers are not comparable across runs). Writes
 * bench/results/latest.json and prints the same JSON. `BENCH_ONLY=front`
 * runs only the Bot API front's figures (bench/results/front.json),
 * `BENCH_ONLY=images` only the image turns' (bench/results/images.json),
 * `BENCH_ONLY=startup` only start-up and idle memory (bench/results/startup.json),
 * `BENCH_ONLY=spare` only the spare Claude process's (bench/results/spare.json),
 * `BENCH_ONLY=credit` only the Agent SDK credit's (bench/results/credit.json).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createBot } from '../handlers/telegram/bot.js';
import { ChatOutput } from '../handlers/telegram/send/output.js';
import { createAnswerStream, type StreamingMode } from '../handlers/telegram/stream/edit-sender.js';
import { text } from '../test/fakes/anthropic.js';
import { startFakeLlama } from '../test/fakes/llama.js';
import { startFakeTelegram } from '../test/fakes/telegram.js';
import { CLAUDE_CLI } from '../test/helpers/claude-bin.js';
import { claudeHarness } from '../test/helpers/claude-harness.js';
import { followUpTtft } from '../test/helpers/claude-ttft.js';
import { spawnService } from '../test/helpers/process.js';
import { creditBench } from './credit.js';
import { benchFixture } from './fixture.js';
import { frontBench } from './front.js';
import { imagesBench } from './images.js';
import { AT_ONCE, MAIN_SETUP } from './main-setup.js';
import { spareBench } from './spare.js';
import { timeStream } from './sse-client.js';
import { startupBench } from './startup.js';
import { median, now, round } from './stats.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 15);
// Otherwise no run would be timed, and every median would be written as null.
if (!Number.isInteger(RUNS) || RUNS < 1)
  throw new Error(`BENCH_RUNS=${process.env.BENCH_RUNS}: a whole number of runs, 1 or more`);
/** For the benches whose every run costs seconds (a process start, a CLI start): fewer runs. */
const SLOW_RUNS = Math.max(3, Math.round(RUNS / 3));

/** The benches `BENCH_ONLY=<name>` runs alone, each with its run count. */
const PARTIAL = {
  front: [RUNS, frontBench],
  images: [RUNS, imagesBench],
  startup: [SLOW_RUNS, startupBench],
  spare: [SLOW_RUNS, spareBench],
  credit: [1, creditBench],
} as const satisfies Record<string, readonly [number, (runs: number) => Promise<unknown>]>;

async function main() {
  const only = process.env.BENCH_ONLY;
  if (only !== undefined && !(only in PARTIAL)) {
    // Not the whole bench instead: that takes minutes, and writes latest.json.
    throw new Error(`BENCH_ONLY=${only} names no bench; one of: ${Object.keys(PARTIAL).join(', ')}`);
  }
  if (only !== undefined) {
    const [runs, bench] = PARTIAL[only as keyof typeof PARTIAL];
    write(`${only}.json`, {
      runs,
      node: process.version,
      // Which Claude CLI (BRAINSTEM_TEST_CLI) the figures are of: every part but front and images starts it.
      cli: CLAUDE_CLI,
      date: new Date().toISOString(),
      [only]: await bench(runs),
    });
    return;
  }
  // First, with no other brainstem running: as `BENCH_ONLY=startup` measures it.
  const startup = await startupBench(SLOW_RUNS);
  const llama = await startFakeLlama();
  const fx = await benchFixture('main', {
    ...MAIN_SETUP,
    config: { ...MAIN_SETUP.config, llama: { baseUrl: llama.baseUrl } },
  });
  const { anthropic, auth } = fx;
  const svc = await spawnService(fx.env, { from: 'dist' });
  const ours = `${svc.url}/v1/chat/completions`;
  const direct = `${llama.baseUrl}/chat/completions`;
  const results: Record<string, unknown> = {
    runs: RUNS,
    node: process.version,
    cli: CLAUDE_CLI,
    date: new Date().toISOString(),
  };

  results.startup = startup;

  // 1. Local brain: TTFT and total through brainstem vs straight to the upstream (20 chunks, 10 ms apart).
  const localWords = Array.from({ length: 20 }, (_, i) => `w${i} `);
  const localAnswer = { answer: localWords.join('') };
  llama.reply({ chunks: localWords, chunkDelayMs: 10 });
  const d: { ttft: number[]; total: number[] } = { ttft: [], total: [] };
  const o: { ttft: number[]; total: number[] } = { ttft: [], total: [] };
  for (let i = 0; i < RUNS + 2; i++) {
    const msg = { messages: [{ role: 'user', content: `bench ${i}` }] };
    const a = await timeStream(direct, { model: 'x', ...msg }, {}, localAnswer);
    const b = await timeStream(
      ours,
      { model: 'local', ...msg },
      { ...auth, 'x-session-key': `b${i}` },
      localAnswer,
    );
    if (i < 2) continue; // warm-up
    d.ttft.push(a.ttftMs);
    d.total.push(a.totalMs);
    o.ttft.push(b.ttftMs);
    o.total.push(b.totalMs);
  }
  results.local = {
    directTtftMs: round(median(d.ttft)),
    oursTtftMs: round(median(o.ttft)),
    ttftAddedMs: round(median(o.ttft) - median(d.ttft)),
    directTotalMs: round(median(d.total)),
    oursTotalMs: round(median(o.total)),
    totalRatio: round(median(o.total) / median(d.total), 3),
    targets: { ttftAddedMs: '<= 5', totalRatio: '<= 1.05' },
  };

  // 2. Claude brain: an answer streamed over ~2 s; TTFT / total shows whether streaming is real.
  const claudeWords = (n: number) => Array.from({ length: n }, (_, i) => `tok${i} `);
  anthropic.script(() => text(claudeWords(20), { delayMs: 100 }));
  const fresh: number[] = [];
  const followUp: number[] = [];
  const claudeRuns = Math.max(3, Math.round(RUNS / 5));
  for (let i = 0; i < claudeRuns; i++) {
    const first = [{ role: 'user', content: `claude bench ${i}` }];
    const headers = { ...auth, 'x-session-key': `c${i}` };
    const twenty = { answer: claudeWords(20).join('') };
    const a = await timeStream(ours, { model: 'assistant', messages: first }, headers, twenty);
    fresh.push(a.ttftMs / a.totalMs);
    // The same conversation's next message: served by its warm process.
    const next = [...first, { role: 'assistant', content: a.text }, { role: 'user', content: 'and then?' }];
    const b = await timeStream(ours, { model: 'assistant', messages: next }, headers, twenty);
    followUp.push(b.ttftMs / b.totalMs);
  }
  // A follow-up that found no warm process would time a CLI start (a resumed session) instead.
  const warmFollowUps = svc.logs
    .filter((l) => l.includes('"msg":"claude turn started"'))
    .map((l) => JSON.parse(l) as { sessionKey?: string; warm?: boolean })
    .filter((l) => /^c\d+$/.test(l.sessionKey ?? '') && l.warm === true).length;
  if (warmFollowUps !== claudeRuns) {
    throw new Error(`${warmFollowUps} of the ${claudeRuns} Claude follow-ups ran on their warm process`);
  }
  results.claude = {
    newConversationTtftOverTotal: round(median(fresh), 3),
    followUpTtftOverTotal: round(median(followUp), 3),
    runs: claudeRuns,
    // Both: streaming is real. A new conversation's first token waits for the CLI's start here (no
    // spare); with a spare ready, claudeSpare.newConversation has its own target (<= 0.10).
    target: { newConversationTtftOverTotal: '<= 0.3', followUpTtftOverTotal: '<= 0.3' },
  };

  // 3. Concurrency: 8 new conversations at once vs 1, wall time ratio, medians of three. The targets
  // are the first round's (issue 3). Claude's is out of reach on 2 cores by construction: each new
  // conversation starts a CLI here (no spare, MAIN_SETUP; ~1.5 s of CPU), so eight cost about four
  // times one; issue 16's 8-at-once target is for warm processes (claudeSpare.warmConcurrency).
  const wall = async (n: number, model: string, tag: string, answer: string) => {
    const t0 = now();
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        timeStream(
          ours,
          { model, messages: [{ role: 'user', content: `${tag} ${n} ${i}` }] },
          { ...auth, 'x-session-key': `${tag}-${n}-${i}-${t0}` },
          { answer },
        ),
      ),
    );
    return now() - t0;
  };
  llama.reply({ chunks: localWords, chunkDelayMs: 10 });
  const thrice = async (n: number, model: string, tag: string, answer: string) =>
    median([
      await wall(n, model, tag, answer),
      await wall(n, model, tag, answer),
      await wall(n, model, tag, answer),
    ]);
  const l1 = await thrice(1, 'local', 'l', localAnswer.answer);
  const l8 = await thrice(AT_ONCE, 'local', 'l', localAnswer.answer);
  anthropic.script(() => text(claudeWords(10), { delayMs: 100 }));
  const c1 = await thrice(1, 'assistant', 'c', claudeWords(10).join(''));
  const c8 = await thrice(AT_ONCE, 'assistant', 'c', claudeWords(10).join(''));
  results.concurrency = {
    rounds: 3,
    local: { oneMs: round(l1), eightMs: round(l8), ratio: round(l8 / l1, 3), target: '<= 1.2' },
    claude: { oneMs: round(c1), eightMs: round(c8), ratio: round(c8 / c1, 3), target: '<= 1.5' },
  };

  // 4. /v1/models while a long chat streams.
  anthropic.script(() => text(claudeWords(30), { delayMs: 100 }));
  // Sampled from its first token on (its CLI start is over): 20 samples ~50 ms apart, within its 3 s.
  let streaming: () => void = () => {};
  const started = new Promise<void>((resolve) => {
    streaming = resolve;
  });
  let ended = false;
  const running = timeStream(
    ours,
    { model: 'assistant', messages: [{ role: 'user', content: 'long one' }] },
    { ...auth, 'x-session-key': 'long' },
    { answer: claudeWords(30).join(''), onFirstToken: streaming },
  ).finally(() => {
    ended = true;
  });
  await Promise.race([started, running]);
  const lat: number[] = [];
  for (let i = 0; i < 20; i++) {
    if (ended) throw new Error(`the chat ended before /v1/models sample ${i}: not timed during a chat`);
    const t0 = now();
    const r = await fetch(`${svc.url}/v1/models`, { headers: auth });
    await r.arrayBuffer();
    lat.push(now() - t0);
    await sleep(50);
  }
  await running;
  results.modelsDuringChat = {
    medianMs: round(median(lat)),
    maxMs: round(Math.max(...lat)),
    samples: lat.length,
    target: '<= 5',
  };

  await svc.stop();

  // 5. Warm Claude process vs a fresh CLI for a follow-up message.
  const h = await claudeHarness();
  try {
    const followUpRuns = Math.max(3, Math.round(RUNS / 3));
    const f = await followUpTtft(h, followUpRuns);
    results.claudeFollowUp = {
      runs: followUpRuns,
      warmTtftMs: round(median(f.warmMs)),
      freshTtftMs: round(median(f.freshMs)),
      ratio: round(median(f.warmMs) / median(f.freshMs), 3),
      target: '<= 0.3',
    };
  } finally {
    await h.close();
  }

  results.telegram = {
    edit: await telegramStream('edit'),
    draft: await telegramStream('draft'),
  };
  results.front = await frontBench(RUNS);
  results.images = await imagesBench(RUNS);

  // 6. The spare Claude process: new conversations with and without one; eight warm follow-ups at once.
  results.claudeSpare = await spareBench(SLOW_RUNS);

  // 7. The Agent SDK credit: the ledger against the CLI's own costs, and the meter over a year of rows.
  results.credit = await creditBench();

  await llama.close();
  await fx.close();
  write('latest.json', results);
}

function write(file: string, results: Record<string, unknown>): void {
  mkdirSync('bench/results', { recursive: true });
  const json = JSON.stringify(results, null, 2);
  writeFileSync(path.join('bench/results', file), `${json}\n`);
  process.stdout.write(`${json}\n`);
}

/**
 * A 2 s answer (20 deltas, 100 ms apart) streamed into a private chat of the
 * Bot API emulator: time from the first delta to Telegram's first
 * acknowledgement, and how many Bot API calls the answer cost.
 */
async function telegramStream(mode: StreamingMode) {
  const tg = await startFakeTelegram();
  try {
    const out = new ChatOutput(createBot(tg.token, tg.apiRoot).api, 4242);
    const stream = createAnswerStream(mode, out, { intervalMs: 1000 });
    stream.begin();
    let text = '';
    for (let i = 0; i < 20; i++) {
      text += `word${i} `;
      stream.update(text);
      await sleep(100);
    }
    await stream.finish(text);
    const s = stream.stats;
    return {
      firstTokenToShownMs:
        s.firstShownAt !== undefined && s.firstTextAt !== undefined ? s.firstShownAt - s.firstTextAt : null,
      sends: s.sends,
      edits: s.edits,
      drafts: tg.callsOf('sendMessageDraft').length,
      // Telegram keeps no whitespace at a message's ends (nor does the sender send it): the
      // answer's trailing space is not a text left undelivered.
      finalTextDelivered: tg.messages(4242).at(-1)?.text === text.trim(),
    };
  } finally {
    await tg.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

main().catch((err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
