/**
 * Image turns through the OpenAI endpoint, brainstem as its own process and
 * the fake llama-server (a vision mode) as the brain: the time of a turn with
 * a 5 MB photo against a text turn in the same run, and brainstem's resident
 * memory while 4 such turns run at once against the image bytes in flight
 * (target under 2×: a body is held once, not copied per layer).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startFakeLlama } from '../test/fakes/llama.js';
import { dataUrlPart, randomPng } from '../test/helpers/images.js';
import { spawnService } from '../test/helpers/process.js';
import type { BenchSetup } from './fixture.js';
import { timeStream } from './sse-client.js';
import { median, now, round } from './stats.js';

const MB = 1024 * 1024;
const CONCURRENT = 4;

/** A vision mode on the local model, no mode tag in its answers. */
export const IMAGES_SETUP: BenchSetup = {
  config: {
    defaultMode: 'eyes',
    modes: { eyes: { kind: 'llama', vision: true, allowedTools: [] } },
    server: { modeTag: false },
  },
  concurrentTurns: 0,
  warmConversations: 0,
};

export async function imagesBench(runs: number) {
  const llama = await startFakeLlama({ chunkDelayMs: 0 });
  // A short answer: the figure is the image's way in, not the answer's way out.
  llama.reply({ chunks: ['seen ', 'it'] });
  const dir = mkdtempSync(path.join(tmpdir(), 'bst-bench-img-'));
  const configFile = path.join(dir, 'brainstem.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      dataDir: path.join(dir, 'data'),
      llama: { baseUrl: llama.baseUrl },
      ...IMAGES_SETUP.config,
    }),
  );
  const token = `bench-img-${Date.now()}-0123456789`;
  const svc = await spawnService({
    BRAINSTEM_CONFIG: configFile,
    HOME: dir,
    BRAINSTEM_API_TOKEN: token,
    CLAUDE_BIN: path.join(dir, 'no-claude'),
  });
  const pid = svc.child.pid ?? 0;
  const url = `${svc.url}/v1/chat/completions`;
  const headers = { authorization: `Bearer ${token}` };
  const photo = randomPng(1300, 1290); // ~5 MB
  const imageTurn = (tag: string) =>
    timeStream(
      url,
      {
        model: 'eyes',
        messages: [{ role: 'user', content: [{ type: 'text', text: tag }, dataUrlPart(photo)] }],
      },
      { ...headers, 'x-session-key': tag },
      { answer: 'seen it' },
    );
  const textTurn = (tag: string) =>
    timeStream(
      url,
      { model: 'eyes', messages: [{ role: 'user', content: tag }] },
      { ...headers, 'x-session-key': tag },
      { answer: 'seen it' },
    );
  try {
    for (let i = 0; i < 2; i++) await textTurn(`warm-${i}`);

    // Memory: 4 image turns at once, resident set sampled while they run.
    const base = status(pid);
    let peakKb = base.rssKb;
    const sampler = setInterval(() => {
      peakKb = Math.max(peakKb, status(pid).rssKb);
    }, 2);
    const bodyBytes = JSON.stringify(dataUrlPart(photo)).length;
    await Promise.all(Array.from({ length: CONCURRENT }, (_, i) => imageTurn(`mem-${i}`)));
    clearInterval(sampler);
    const after = status(pid);
    peakKb = Math.max(peakKb, after.rssKb, after.hwmKb > base.hwmKb ? after.hwmKb : 0);
    const grownMb = (peakKb - base.rssKb) / 1024;
    const inFlightMb = (CONCURRENT * bodyBytes) / MB;

    // Time: text and image turns alternated, medians.
    const text: number[] = [];
    const image: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = now();
      await textTurn(`t-${i}`);
      text.push(now() - t0);
      const t1 = now();
      await imageTurn(`i-${i}`);
      image.push(now() - t1);
    }
    return {
      photoMb: round(photo.length / MB, 2),
      requestBodyMb: round(bodyBytes / MB, 2),
      textTurnMs: round(median(text)),
      imageTurnMs: round(median(image)),
      imageOverTextRatio: round(median(image) / median(text), 2),
      concurrentTurns: CONCURRENT,
      rssBeforeMb: round(base.rssKb / 1024, 1),
      rssPeakMb: round(peakKb / 1024, 1),
      rssGrowthMb: round(grownMb, 1),
      imageBytesInFlightMb: round(inFlightMb, 1),
      growthOverInFlight: round(grownMb / inFlightMb, 2),
      target: { growthOverInFlight: '< 2' },
    };
  } finally {
    await svc.stop();
    await llama.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Resident set and its high-water mark, from /proc (Linux). */
function status(pid: number): { rssKb: number; hwmKb: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  return {
    rssKb: Number(/VmRSS:\s+(\d+)/.exec(text)?.[1] ?? 0),
    hwmKb: Number(/VmHWM:\s+(\d+)/.exec(text)?.[1] ?? 0),
  };
}
