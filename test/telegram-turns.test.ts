import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatMessage } from '../brains/types.js';
import { type Harness, startHarness } from './telegram-harness.js';

let h: Harness;
let release: () => void = () => undefined;
const gate = new Promise<void>((resolve) => {
  release = resolve;
});

beforeAll(async () => {
  h = await startHarness({ config: { server: { modeTag: true } } });
  h.llama.script((body) => {
    const last = String(body.messages?.at(-1)?.content ?? '');
    if (last === 'hold on') return { chunks: ['Thinking hard ', { wait: gate }, 'never shown'] };
    return { chunks: [`echo: ${last}`] };
  });
});
afterAll(async () => {
  release();
  await h.close();
});

const chatRequests = () => h.llama.requests.filter((r) => r.path === '/v1/chat/completions');
const sent = (i: number) =>
  (chatRequests()[i]?.body as { messages?: ChatMessage[] } | undefined)?.messages ?? [];
const reply = (chatId: number, pattern: RegExp) =>
  h.tg.waitFor(() => h.tg.botMessages(chatId).find((m) => pattern.test(m.text)));

describe('turns of one chat', () => {
  it('keeps a short history per chat so the brain has context; /new starts afresh', async () => {
    const u = h.tg.user(112);
    u.says('first');
    await reply(112, /echo: first/);
    u.says('second');
    await reply(112, /echo: second/);
    const second = sent(chatRequests().length - 1);
    expect(second.map((m) => [m.role, m.content])).toEqual([
      ['user', 'first'],
      // The mode tag the chat shows is not part of what the brain said.
      ['assistant', 'echo: first'],
      ['user', 'second'],
    ]);
    u.says('/new');
    await reply(112, /Fresh conversation/);
    u.says('third');
    await reply(112, /echo: third/);
    expect(sent(chatRequests().length - 1).map((m) => m.content)).toEqual(['third']);
    expect(h.tg.lastBotMessage(112)?.text).toBe('[local] echo: third');
  });

  it('queues a message sent during a turn, answers /stop at once, aborts the upstream request, then answers the queued one', async () => {
    const u = h.tg.user(113);
    u.says('hold on');
    const first = await reply(113, /Thinking hard/);
    const held = chatRequests().at(-1);
    u.says('and then?');
    const queued = await reply(113, /Queued/);
    expect(queued.replyTo).toBeDefined();

    // The held answer's gate is never opened: a reply while it still holds is the /stop answered at once.
    u.says('/stop');
    await reply(113, /Stopped the answer in progress\. 1 queued message\(s\) follow\./);
    expect(await held?.ended).toBe('closed');

    await h.tg.waitFor(() => first.text.endsWith('⏹ stopped'));
    expect(first.text).toBe('[local] Thinking hard\n\n⏹ stopped');
    // The queued notice itself becomes the answer to the queued message.
    await h.tg.waitFor(() => queued.text === '[local] echo: and then?');
    expect(h.tg.botMessages(113).filter((m) => /echo: and then\?/.test(m.text))).toHaveLength(1);
  });

  it('says so when /stop finds nothing running', async () => {
    h.tg.user(114).says('/stop');
    await reply(114, /Nothing is running/);
  });

  it('a brain that never answers is still stopped on shutdown with a message (grace-bounded)', async () => {
    const u = h.tg.user(115);
    u.says('hold on');
    const msg = await reply(115, /Thinking hard/);
    await h.stopService();
    expect(msg.text).toMatch(/brainstem is restarting; this answer was cut/);
  });
});
