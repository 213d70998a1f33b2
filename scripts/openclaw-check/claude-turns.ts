/**
 * The Claude stage of `npm run openclaw-check`: OpenClaw with brainstem as its model
 * provider, brainstem's default mode a Claude mode that runs the real `claude` CLI (the one
 * the tests pin) against the fake Messages API in test/. Three turns of one OpenClaw
 * session: two long answers, then a turn whose prompt no longer fits Claude's context. The
 * API refuses it ("prompt is too long"); brainstem answers that as an overflow and closes
 * the Claude session that holds it; OpenClaw compacts its history and sends the turn again,
 * which a new Claude session answers.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import {
  claudeTestEnv,
  httpError,
  type RecordedRequest,
  startFakeAnthropic,
  text,
} from '../../test/fakes/anthropic.js';
import { CLAUDE_BIN } from '../../test/helpers/claude-bin.js';
import { spawnService } from '../../test/helpers/process.js';
import {
  agentTurn,
  killGroup,
  logTail,
  openclawConfig,
  type StageContext,
  show,
  stopService,
} from './shared.js';

const REFUSAL = 'prompt is too long: 212345 tokens > 200000 maximum';

export async function claudeTurns({ openclaw, llama, check, dir, defer }: StageContext): Promise<void> {
  const fake = await startFakeAnthropic();
  defer(() => fake.close());
  const cli = await claudeTestEnv(fake.url);
  defer(() => cli.cleanup());
  const ocHome = path.join(dir, 'oc-home');
  const work = path.join(dir, 'work');
  for (const d of [path.join(ocHome, '.openclaw'), work]) mkdirSync(d, { recursive: true });
  const configFile = path.join(dir, 'brainstem.json');
  writeFileSync(
    configFile,
    `${JSON.stringify({ defaultMode: 'assistant', claude: { bin: CLAUDE_BIN, env: cli.env, maxRetries: 0 } })}\n`,
  );
  const env: Record<string, string> = {
    BRAINSTEM_CONFIG: configFile,
    BRAINSTEM_DATA_DIR: path.join(dir, 'bs-data'),
    BRAINSTEM_HOST: '127.0.0.1',
    BRAINSTEM_API_TOKEN: randomBytes(24).toString('hex'),
    HOME: path.join(dir, 'bs-home'),
    LLAMA_BASE_URL: llama.fake.baseUrl,
  };
  const svc = await spawnService(env, { from: 'dist' });
  defer(() => stopService(svc));
  const { stdout: block } = await openclawConfig(env, new URL(svc.url).port);
  writeFileSync(path.join(ocHome, '.openclaw', 'openclaw.json'), block);
  const children = new Set<ChildProcess>();
  defer(() => {
    for (const c of children) killGroup(c);
  });
  const turn = (message: string, args?: string[]) =>
    agentTurn(openclaw, { home: ocHome, cwd: work, children }, message, args);

  // The API as it would be if the two long answers and the third turn together overflowed
  // Claude's context, and the long paste of the fourth overflowed it on its own.
  const sent = (r: RecordedRequest) => JSON.stringify(r.body?.messages ?? []);
  const overflows = (r: RecordedRequest) =>
    sent(r).includes('BULKY-1') && sent(r).includes('BULKY-2') && sent(r).includes('turn three');
  fake.script((r) => {
    if (overflows(r) || sent(r).includes('HUGE'))
      return httpError(400, { message: REFUSAL, shouldRetry: false });
    const asked = r.lastUserText;
    if (asked.includes('turn five')) return text('CLAUDE-FIVE still here');
    if (asked.includes('turn three')) return text('CLAUDE-AFTER the overflow');
    if (asked.includes('turn two')) return text(`BULKY-2 ${'a long answer. '.repeat(400)}`);
    if (asked.includes('turn one')) return text(`BULKY-1 ${'a long answer. '.repeat(400)}`);
    return text('SUMMARY-OF-EARLIER two long answers were given');
  });

  const t1 = await turn('turn one: tell me something long');
  const t2 = await turn('turn two: and something longer');
  check(
    'turns',
    'two long answers through Claude Code',
    t1.text.includes('BULKY-1') && t2.text.includes('BULKY-2'),
    `payloads ${show([t1.text.slice(0, 40), t2.text.slice(0, 40)])}${t2.text.includes('BULKY-2') ? '' : `; OpenClaw's log ends: ${logTail(t2.stderr)}`}`,
  );

  // Claude Code compacts its own session when the API refuses a prompt as too long and
  // there is history to compact: it summarises the older part and sends the turn again.
  let before = fake.mainRequests().length;
  const t3 = await turn('turn three: now sum it all up');
  let requests = fake.mainRequests().slice(before);
  const compacted = requests.filter((r) => /<summary>/.test(r.lastUserText)).length;
  check(
    'overflow',
    'a history over the context: Claude Code compacts it itself, and the turn is answered',
    t3.text.includes('CLAUDE-AFTER') && requests.filter(overflows).length >= 1 && compacted >= 1,
    `${requests.length} Messages API request(s): ${requests.filter(overflows).length} refused as too long, ${compacted} compaction request(s) of Claude Code's; OpenClaw's payload ${show(t3.text.slice(0, 80))}`,
  );

  // A message too long on its own: Claude Code cannot compact it away (it tries, and keeps
  // the message in its session). brainstem answers an overflow, not an answer in words, and
  // closes that session; OpenClaw takes it for one: it tries to compact its own history
  // (too little here) and tells its user to start afresh: a new OpenClaw session (what /new
  // starts in a chat) goes on.
  before = fake.mainRequests().length;
  const t4 = await turn(`turn four: HUGE ${'pasted text '.repeat(100)}`);
  requests = fake.mainRequests().slice(before);
  const closed = svc.logs.some((l) => l.includes('Claude session over the context closed'));
  const tookIt = /context overflow detected/i.test(t4.stderr);
  check(
    'overflow',
    'a message over the context on its own: an overflow for OpenClaw, and the Claude session closed',
    closed && tookIt && /context overflow/i.test(t4.text),
    `${requests.length} Messages API request(s), ${requests.filter((r) => sent(r).includes('HUGE')).length} refused; brainstem ${closed ? 'closed' : 'did not close'} the Claude session; OpenClaw ${tookIt ? 'took it for a context overflow' : 'did not take it for a context overflow'} (${show(/auto-compaction failed[^\n]*/.exec(stripVTControlCharacters(t4.stderr))?.[0] ?? 'no compaction tried')}) and answered ${show(t4.text.slice(0, 100))}`,
  );
  before = fake.mainRequests().length;
  const t5 = await turn('turn five: are you still there?', ['--session-id', randomUUID()]);
  requests = fake.mainRequests().slice(before);
  check(
    'overflow',
    'a new OpenClaw session goes on',
    t5.text.includes('CLAUDE-FIVE') &&
      requests.length === 1 &&
      !sent(requests[0] as RecordedRequest).includes('HUGE'),
    `${requests.length} Messages API request(s), ${requests.some((r) => sent(r).includes('HUGE')) ? 'one holding the long message' : 'none holding the long message'}; OpenClaw's payload ${show(t5.text.slice(0, 80))}`,
  );
}
