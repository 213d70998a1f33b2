/**
 * The provider stage of `npm run openclaw-check`: nine turns of one OpenClaw session
 * (`openclaw agent --local --agent main --message … --json`) with brainstem as its model
 * provider, each checked: one session kept as one brainstem conversation, a mid-stream
 * failure answered once in brainstem's words, a call of a tool not offered held back, an
 * offered one run, an offered one cut by a failure never run, and a conversation longer than
 * the model's context taken for an overflow.
 */
import { type ChildProcess, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { FakeReply } from '../../test/fakes/llama.js';
import { spawnService } from '../../test/helpers/process.js';
import {
  agentTurn,
  killGroup,
  logTail,
  openclawConfig,
  type StageContext,
  show,
  sleep,
  stopService,
} from './shared.js';

interface UsageRow {
  id: number;
  mode: string;
  session_key: string;
  error: string | null;
}

export async function providerTurns({ openclaw, llama, check, dir, defer }: StageContext): Promise<void> {
  const dataDir = path.join(dir, 'bs-data');
  const bsHome = path.join(dir, 'bs-home');
  const ocHome = path.join(dir, 'oc-home');
  const work = path.join(dir, 'work');
  for (const d of [dataDir, bsHome, path.join(ocHome, '.openclaw'), work]) mkdirSync(d, { recursive: true });
  const configFile = path.join(dir, 'brainstem.json');
  writeFileSync(configFile, `${JSON.stringify({ defaultMode: 'local' })}\n`);
  const { fake, queue, chatRequests } = llama;
  const openclaws = new Set<ChildProcess>();
  defer(() => {
    for (const c of openclaws) killGroup(c);
  });

  const env: Record<string, string> = {
    BRAINSTEM_CONFIG: configFile,
    BRAINSTEM_DATA_DIR: dataDir,
    BRAINSTEM_HOST: '127.0.0.1',
    BRAINSTEM_API_TOKEN: randomBytes(24).toString('hex'),
    HOME: bsHome,
    LLAMA_BASE_URL: fake.baseUrl,
    CLAUDE_BIN: '/bin/false',
  };
  const svc = await spawnService(env, { from: 'dist' });
  defer(() => stopService(svc));
  const port = new URL(svc.url).port;

  // openclaw.json is brainstem's own block, as a user gets it.
  const { stdout: block, stderr: configSaid } = await openclawConfig(env, port);
  if (configSaid) process.stdout.write(`openclaw-config said: ${configSaid}`);
  const parsedBlock = JSON.parse(block) as {
    models?: {
      providers?: { brainstem?: { baseUrl?: string; models?: { id: string; contextWindow?: number }[] } };
    };
  };
  const localContext = parsedBlock.models?.providers?.brainstem?.models?.find(
    (m) => m.id === 'local',
  )?.contextWindow;
  check(
    'setup',
    "the block has the local model's context from llama-server",
    localContext === 131072,
    `contextWindow ${show(localContext)} (the fake's /props says 131072)`,
  );
  const baseUrl = parsedBlock.models?.providers?.brainstem?.baseUrl;
  if (baseUrl !== `${svc.url}/v1`) {
    throw new Error(`openclaw-config gave baseUrl ${baseUrl}, but brainstem listens at ${svc.url}`);
  }
  writeFileSync(path.join(ocHome, '.openclaw', 'openclaw.json'), block);
  process.stdout.write(
    `openclaw ${openclaw.version} (node ${execFileSync(openclaw.node24, ['--version'], { encoding: 'utf8' }).trim()}), brainstem at ${svc.url}, fake llama at ${fake.url}\n`,
  );

  const db = () =>
    new Database(path.join(dataDir, 'brainstem.sqlite'), { readonly: true, fileMustExist: true });
  const usageAfter = async (lastId: number): Promise<UsageRow[]> => {
    // brainstem records a turn's usage as it ends; give it a moment after OpenClaw exits.
    for (let i = 0; i < 20; i++) {
      const conn = db();
      try {
        const rows = conn
          .prepare('SELECT id, mode, session_key, error FROM usage WHERE id > ? ORDER BY id')
          .all(lastId) as UsageRow[];
        if (rows.length > 0) return rows;
      } finally {
        conn.close();
      }
      await sleep(250);
    }
    return [];
  };
  let lastUsageId = 0;

  const turn = (message: string) =>
    agentTurn(openclaw, { home: ocHome, cwd: work, children: openclaws }, message);

  /** Runs one turn; a turn with no --json payload is a FAIL of its own, with OpenClaw's stderr tail. */
  /** `answers: false` for a turn OpenClaw is expected to end with an error of its own. */
  const run = async (name: string, message: string, replies: FakeReply[], answers = true) => {
    queue.length = 0;
    queue.push(...replies);
    const before = chatRequests().length;
    const r = await turn(message);
    const requests = chatRequests().slice(before);
    const ok = r.code === 0 && r.json !== undefined && (r.json.payloads?.length ?? 0) > 0;
    const tail = logTail(r.stderr, 5, 600);
    if (answers) {
      check(
        name,
        'openclaw answered',
        ok,
        ok
          ? `exit 0 in ${(r.ms / 1000).toFixed(1)} s, payload ${JSON.stringify(r.text.slice(0, 160))}`
          : `exit ${r.code}, ${r.json ? 'no payloads' : 'no JSON on stdout'}; stderr: ${tail}`,
      );
    }
    const rows = await usageAfter(lastUsageId);
    lastUsageId = rows.at(-1)?.id ?? lastUsageId;
    return { r, requests, rows, ok };
  };

  // 1. A plain turn.
  const t1 = await run('turn1', 'turn one: hello', [{ chunks: ['PLAIN-ONE ', 'marker 3141'] }]);
  check(
    'turn1',
    "fake's answer reaches OpenClaw",
    t1.r.text.includes('PLAIN-ONE marker 3141'),
    `payload ${show(t1.r.text.slice(0, 160))}`,
  );
  const sessionId = t1.r.json?.meta?.agentMeta?.sessionId;
  const key1 = t1.rows.at(-1)?.session_key;
  const keyed =
    sessionId !== undefined &&
    key1 !== undefined &&
    t1.rows.every((row) => row.session_key === key1) &&
    new RegExp(`^${sessionId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+$`).test(key1);
  check(
    'turn1',
    'x-session-affinity keys the conversation',
    keyed,
    `usage session_key ${show(key1)} (${t1.rows.length} row(s), mode ${show(t1.rows.at(-1)?.mode)}), OpenClaw sessionId ${show(sessionId)}: expected "<sessionId>:<n>"`,
  );
  check(
    'turn1',
    'one model request',
    t1.requests.length === 1,
    `the fake got ${t1.requests.length} chat request(s)`,
  );

  // 2. A second plain turn: the same brainstem conversation.
  const t2 = await run('turn2', 'turn two: and again', [{ chunks: ['PLAIN-TWO ', 'marker 2718'] }]);
  check(
    'turn2',
    "fake's answer reaches OpenClaw",
    t2.r.text.includes('PLAIN-TWO marker 2718'),
    `payload ${show(t2.r.text.slice(0, 160))}`,
  );
  const key2 = t2.rows.at(-1)?.session_key;
  check(
    'turn2',
    'same brainstem conversation',
    key1 !== undefined && t2.rows.length > 0 && t2.rows.every((row) => row.session_key === key1),
    `usage session_key ${show(key2)} (${t2.rows.length} row(s)), turn 1's ${show(key1)}`,
  );
  const history = (t2.requests[0]?.body as { messages?: { role: string; content?: unknown }[] } | undefined)
    ?.messages;
  check(
    'turn2',
    'history carries turn 1',
    JSON.stringify(history ?? []).includes('PLAIN-ONE marker 3141'),
    `the model request has ${history?.length ?? 0} message(s)${JSON.stringify(history ?? []).includes('PLAIN-ONE') ? ", turn 1's answer among them" : ", none with turn 1's answer"}`,
  );

  // 3. The model fails mid-answer: no retry, and brainstem's message reaches the user.
  const logsBefore = svc.logs.length;
  const t3 = await run('turn3', 'turn three: tell me a story', [
    {
      chunks: ['partial answer', { raw: 'data: {"error":{"message":"upstream exploded"}}\n\n' }],
      truncate: true,
    },
    { chunks: ['RETRY ANSWER'] },
  ]);
  check(
    'turn3',
    'exactly one model request',
    t3.requests.length === 1,
    `the fake got ${t3.requests.length} chat request(s)${t3.r.text.includes('RETRY ANSWER') ? ' and OpenClaw showed the retry' : ''}`,
  );
  const said = 'the local model failed mid-answer: upstream exploded';
  check(
    'turn3',
    "brainstem's message reaches OpenClaw",
    t3.r.text.includes(said),
    `payload ${show(t3.r.text.slice(0, 200))}`,
  );
  const spoken = svc.logs
    .slice(logsBefore)
    .find((l) => l.includes('error answered as text (x-brainstem-client)'));
  check(
    'turn3',
    'x-brainstem-client reached brainstem',
    spoken !== undefined,
    spoken !== undefined
      ? 'brainstem logged "error answered as text (x-brainstem-client)", which it does only for that header'
      : 'no "error answered as text (x-brainstem-client)" line in brainstem\'s log for this turn',
  );
  check(
    'turn3',
    'same brainstem conversation',
    key1 !== undefined && t3.rows.length > 0 && t3.rows.every((row) => row.session_key === key1),
    `usage session_key ${show(t3.rows.at(-1)?.session_key)} (${t3.rows.length} row(s))`,
  );

  // 4. The model calls exec, which mode local does not offer: held back, never run.
  const pwned = path.join(work, 'pwned.txt');
  const t4 = await run('turn4', 'turn four: run the command', [
    {
      chunks: [
        {
          toolCall: {
            index: 0,
            id: 'call_exec',
            name: 'exec',
            arguments: JSON.stringify({ command: `echo PWNED > ${pwned}` }),
          },
        },
      ],
    },
    { chunks: ['(a second request: the exec call came back to the model)'] },
  ]);
  // OpenClaw has exited: an exec it ran would have ended before it answered.
  check(
    'turn4',
    'exec not run',
    !existsSync(pwned),
    existsSync(pwned) ? `${pwned} was written` : 'no file written',
  );
  check(
    'turn4',
    'user told why',
    t4.r.text.includes('which mode local does not give it'),
    `payload ${show(t4.r.text.slice(0, 200))}`,
  );
  const offered = (
    t4.requests[0]?.body as { tools?: { function?: { name?: string } }[] } | undefined
  )?.tools?.map((t) => t.function?.name);
  check(
    'turn4',
    'exec not offered to the model',
    offered !== undefined && !offered.includes('exec'),
    `tools offered: ${show(offered)}; ${t4.requests.length} model request(s)`,
  );

  // 5. The model calls the offered read: OpenClaw runs it and sends the result back.
  const note = path.join(work, 'note.txt');
  const marker = `READ-OK marker ${randomBytes(4).toString('hex')}`;
  writeFileSync(note, `${marker}\n`);
  const t5 = await run('turn5', 'turn five: read the note', [
    {
      chunks: [
        'Reading it.',
        {
          toolCall: { index: 0, id: 'call_read', name: 'read', arguments: JSON.stringify({ path: note }) },
        },
      ],
    },
    { chunks: ['READ-DONE ', 'the file says what it says.'] },
  ]);
  const toolMessages = t5.requests
    .slice(1)
    .flatMap(
      (r) => (r.body as { messages?: { role: string; content?: unknown }[] } | undefined)?.messages ?? [],
    )
    .filter((m) => m.role === 'tool');
  const carried = toolMessages.some((m) => JSON.stringify(m.content ?? '').includes(marker));
  check(
    'turn5',
    'OpenClaw ran read',
    t5.requests.length >= 2 && carried,
    `${t5.requests.length} model request(s); ${carried ? "the next one carries a tool message with the file's content" : `no tool message with ${show(marker)} (tool messages: ${show(toolMessages).slice(0, 300)})`}`,
  );
  check(
    'turn5',
    'final answer reaches OpenClaw',
    t5.r.text.includes('READ-DONE the file says what it says.'),
    `payload ${show(t5.r.text.slice(0, 160))}`,
  );

  // 5b. The model fails in the middle of an offered call's arguments: the cut call is never run
  //    and the user is told (brainstem holds a call until the answer is done, and says the cut
  //    one was not run; OpenClaw 2026.9.6 did not run it before either, but its provider library
  //    completes unfinished JSON). A read it ran would go back to the model in a second request.
  const t5b = await run('turn5b', 'turn five b: read the note again', [
    {
      chunks: [
        {
          toolCall: { index: 0, id: 'call_cut', name: 'read', arguments: `{"path": ${JSON.stringify(note)}` },
        },
        { raw: 'data: {"error":{"message":"upstream exploded mid-call"}}\n\n' },
      ],
      truncate: true,
    },
    { chunks: ['(a second request: the cut call was run)'] },
  ]);
  check(
    'turn5b',
    'a call cut by a failure is not run',
    t5b.requests.length === 1,
    `${t5b.requests.length} model request(s)${t5b.requests.length > 1 ? ': OpenClaw ran the cut read and sent its result back' : ''}`,
  );
  check(
    'turn5b',
    'user told it was not run',
    t5b.r.text.includes('call of read was cut off by this failure: not run'),
    `payload ${show(t5b.r.text.slice(0, 240))}`,
  );

  // 6-8. The conversation outgrows the local model's context. brainstem says so as an HTTP error
  //    in llama-server's words, not as an answer, and OpenClaw takes it for a context overflow:
  //    it tries to compact its history and, when there is too little of it to compact (the
  //    block says 131072 tokens, as the fake's /props did, and the session is far from that),
  //    says to start afresh. Two turns with long answers first, so that the history is not tiny.
  const sizeOf = (r: { body: unknown } | undefined) => {
    const b = r?.body as { messages?: unknown[]; tools?: unknown[] } | undefined;
    return Math.ceil(JSON.stringify([b?.messages ?? [], b?.tools ?? []]).length / 4);
  };
  const long = (tag: string) => ({ chunks: [`${tag} `, 'a long answer. '.repeat(600)] });
  await run('turn6', 'turn six: tell me something long', [long('LONG-A')]);
  const t7 = await run('turn7', 'turn seven: and something longer', [long('LONG-B')]);
  // Room for what was asked in turn 7, not for its long answer.
  const context = sizeOf(t7.requests.at(-1)) + 600;
  fake.setContext(context);
  const t8 = await run('turn8', 'turn eight: now sum it up', [{ chunks: ['UNEXPECTED answer'] }], false);
  fake.setContext(undefined);
  const sizes = t8.requests.map(sizeOf);
  check(
    'turn8',
    'one request, refused by the model',
    sizes.length === 1 && (sizes[0] ?? 0) > context,
    `${sizes.length} model request(s) of ~${show(sizes)} tokens against a context of ${context}`,
  );
  const overflow = /"kind": "context_overflow"/.test(t8.r.stdout);
  check(
    'turn8',
    'OpenClaw took it for a context overflow',
    overflow && t8.r.stderr.includes('exceeds the available context size of the local model'),
    `${overflow ? 'its result says kind "context_overflow"' : 'its result says no context_overflow'}; brainstem's message ${t8.r.stderr.includes('exceeds the available context size of the local model') ? 'is' : 'is not'} in its log; payload ${show(t8.r.text.slice(0, 160))}`,
  );
}
