import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatMessage } from '../brains/types.js';
import { type Harness, nextLog, startHarness, turnsDone } from './telegram-harness.js';

let h: Harness;
let release: () => void = () => undefined;
const gate = new Promise<void>((resolve) => {
  release = resolve;
});
let releaseEdits: () => void = () => undefined;
const editsGate = new Promise<void>((resolve) => {
  releaseEdits = resolve;
});
let releaseQuiet: () => void = () => undefined;
const quietGate = new Promise<void>((resolve) => {
  releaseQuiet = resolve;
});

beforeAll(async () => {
  h = await startHarness({ config: { server: { modeTag: true } } });
  h.llama.script((body) => {
    const last = String(body.messages?.at(-1)?.content ?? '');
    if (last === 'hold on') return { chunks: ['Thinking hard ', { wait: gate }, 'never shown'] };
    if (last === 'code, then stop')
      return { chunks: ['Run:\n```sh\nmake all\n', { wait: gate }, 'never shown'] };
    if (last === 'hold for edits') return { chunks: ['Holding ', { wait: editsGate }, 'done'] };
    if (last === 'quiet at first') return { chunks: [{ wait: quietGate }, 'Answered after a pause'] };
    return { chunks: [`echo: ${last}`] };
  });
});
afterAll(async () => {
  release();
  releaseEdits();
  releaseQuiet();
  await h.close();
});

const chatRequests = () => h.llama.requests.filter((r) => r.path === '/v1/chat/completions');
const sent = (i: number) =>
  (chatRequests()[i]?.body as { messages?: ChatMessage[] } | undefined)?.messages ?? [];
const reply = (chatId: number, pattern: RegExp) =>
  h.tg.waitFor(() => h.tg.botMessages(chatId).find((m) => pattern.test(m.text)));

/** The last user message of every request the brain got, oldest first. */
const asked = () =>
  chatRequests().map(
    (_, i) =>
      sent(i)
        .filter((m) => m.role === 'user')
        .at(-1)?.content,
  );
const EDIT_NOTE =
  /^\[The user edited their message of \d{4}-\d\d-\d\d \d\d:\d\d UTC; answer it as it now reads\]\n\n/;

// Before 'turns of one chat', whose last test stops the service.
describe('an edited message', () => {
  it('of an answered message is a new turn: the brain is told it edits the message sent at that time', async () => {
    const u = h.tg.user(116);
    const typo = u.says('wht is 2+2');
    await reply(116, /echo: wht is 2\+2$/);
    u.edits(typo, 'what is 2+3');
    await reply(116, /what is 2\+3$/);
    const turn = sent(chatRequests().length - 1);
    expect(turn.slice(0, 2).map((m) => m.content)).toEqual(['wht is 2+2', 'echo: wht is 2+2']);
    expect(String(turn[2]?.content)).toMatch(new RegExp(`${EDIT_NOTE.source}what is 2\\+3$`));
    expect(turn).toHaveLength(3);
  });

  it('while its turn waits in the queue is answered in its place, once; an edit of the message being answered queues behind it', async () => {
    const u = h.tg.user(117);
    const before = chatRequests().length;
    const running = u.says('hold for edits');
    const holding = await reply(117, /Holding/);
    const typo = u.says('wht is 2+2');
    await reply(117, /Queued/);
    u.edits(typo, 'what is 2+3');
    const taken = await reply(117, /Edit taken: the queued message will be answered as it now reads/);
    expect(taken.replyTo).toBe(typo);
    u.edits(running, 'what is 5+5');
    await h.tg.waitFor(() =>
      h.tg.botMessages(117).find((m) => /Queued/.test(m.text) && m.replyTo === running),
    );
    releaseEdits();
    await h.tg.waitFor(() => holding.text === '[local] Holding done');
    await reply(117, /what is 5\+5$/);
    await turnsDone(h, u);
    const texts = asked().slice(before).map(String);
    // The typo never reached the brain; its turn answered the edited text as a message of its own.
    expect(texts.filter((t) => /wht is/.test(t))).toEqual([]);
    expect(texts.filter((t) => /what is 2\+3/.test(t))).toEqual(['what is 2+3']);
    const edit = texts.filter((t) => /what is 5\+5/.test(t));
    expect(edit).toHaveLength(1);
    expect(edit[0]).toMatch(new RegExp(`${EDIT_NOTE.source}what is 5\\+5$`));
    // In the chat's order: the held answer, the edited queued message, then the edit of the held one.
    const answers = h.tg.botMessages(117).map((m) => m.text);
    const at = (pattern: RegExp) => answers.findIndex((text) => pattern.test(text));
    expect(at(/Holding done/)).toBeLessThan(at(/echo: what is 2\+3/));
    expect(at(/echo: what is 2\+3/)).toBeLessThan(at(/what is 5\+5/));
  });

  it('into a command or a switch request is not run: the chat is told to send it again', async () => {
    const u = h.tg.user(118);
    const id = u.says('hello there');
    await reply(118, /echo: hello there$/);
    u.edits(id, '/new');
    const told = await reply(118, /not run as a command, a mode switch or a shortcut: send it again/);
    expect(told.replyTo).toBe(id);
    u.edits(id, 'switch to local');
    await h.tg.waitFor(() => h.tg.botMessages(118).filter((m) => m.text === told.text).length === 2);
    await turnsDone(h, u);
    // /new did not run: the sentinel's turn still has the earlier one before it.
    expect(sent(chatRequests().length - 1)[0]?.content).toBe('hello there');
    expect(h.tg.botMessages(118).some((m) => /Fresh conversation|Switching|already/i.test(m.text))).toBe(
      false,
    );
    expect(asked().filter((t) => t === '/new' || String(t).includes('switch to local'))).toEqual([]);
  });

  it('of a caption is a new turn naming what the message holds', async () => {
    const u = h.tg.user(119);
    const bytes = new TextEncoder().encode('the notes');
    const doc = u.sendsDocument('notes.txt', bytes, 'summarise', 'text/plain');
    await reply(119, /echo: .*summarise/s);
    u.edits(doc, 'translate it');
    await reply(119, /translate it$/);
    expect(String(asked().at(-1))).toMatch(
      /^\[The user edited the caption of their message of [^\]]+, which holds the document "notes\.txt" \(text\/plain, 9 bytes\); answer it as it now reads\]\n\ntranslate it$/,
    );
  });

  it('of a stranger is refused as their message was (sent as a group too), and reaches no brain', async () => {
    const refused = nextLog(h, (l) => l.msg === 'refused a Telegram user who is not on the allow-list');
    const stranger = h.tg.user(4242);
    const id = stranger.says('hello?');
    await reply(4242, /This bot is private/);
    expect(await refused()).toMatchObject({ userId: 4242, update: 'message' });
    stranger.edits(id, 'stranger edit: what is 2+3');
    expect(await refused(2)).toMatchObject({ userId: 4242, update: 'edited_message' });

    // An anonymous group admin: Telegram's shared sender, the group as sender_chat.
    const anonymous = h.tg.user(1087968824, { chatId: -100900 });
    const sentAs = { id: -100900, type: 'supergroup', title: 'Group -100900' };
    const mention = [{ type: 'mention', offset: 0, length: '@brainstem_test_bot'.length }];
    const anonId = anonymous.sends({
      text: '@brainstem_test_bot anonymous hello',
      entities: mention,
      sender_chat: sentAs,
    });
    await reply(-100900, /does not say who you are/);
    expect(await refused(3)).toMatchObject({ update: 'message', senderChatId: -100900 });
    anonymous.edits(anonId, 'anonymous edit: what is 2+3');
    expect(await refused(4)).toMatchObject({ update: 'edited_message', senderChatId: -100900 });

    await turnsDone(h, h.tg.user(119));
    expect(asked().filter((t) => /edit: what is 2\+3/.test(String(t)))).toEqual([]);
    // One refusal each, as for a second message within the refusal period.
    expect(h.tg.botMessages(4242)).toHaveLength(1);
    expect(h.tg.botMessages(-100900)).toHaveLength(1);
  });
});

describe('strangers in a group', () => {
  it('are told the bot is private only when they address it: a command, a mention, a reply to it', async () => {
    const GROUP = -100902;
    const refused = nextLog(h, (l) => l.msg === 'refused a Telegram user who is not on the allow-list');
    const chatter = h.tg.user(4301, { chatId: GROUP });
    chatter.says('just chatting with friends');
    expect(await refused()).toMatchObject({ userId: 4301, chatId: GROUP });
    chatter.says('/status@some_other_bot');
    expect(await refused(2)).toMatchObject({ userId: 4301 });
    expect(h.tg.botMessages(GROUP)).toEqual([]);

    chatter.says('hey @brainstem_test_bot what is 2+2');
    const told = await reply(GROUP, /Your Telegram user id is 4301/);
    const replier = h.tg.user(4302, { chatId: GROUP });
    replier.says('why?', { replyTo: told.messageId });
    await reply(GROUP, /Your Telegram user id is 4302/);
    h.tg.user(4303, { chatId: GROUP }).says('/status');
    await reply(GROUP, /Your Telegram user id is 4303/);
    expect(h.tg.botMessages(GROUP)).toHaveLength(3);
  });
});

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

  // The chat of the test above, which is over.
  it('/stop in the middle of a code block: the stop line is text below the block, not inside it', async () => {
    const u = h.tg.user(113);
    u.says('code, then stop');
    const answer = await reply(113, /make all/);
    u.says('/stop');
    await h.tg.waitFor(() => answer.text.endsWith('⏹ stopped'));
    const stopAt = answer.text.indexOf('⏹');
    const code = answer.entities.filter((e) => e.type === 'pre' || e.type === 'code');
    expect(code.length).toBeGreaterThan(0);
    expect(code.filter((e) => e.offset + e.length > stopAt)).toEqual([]);
    expect(answer.entities).toContainEqual(expect.objectContaining({ type: 'italic', offset: stopAt + 2 }));
  });

  it('messages sent one right after the other are answered in their order, each below the one before', async () => {
    const GROUP = -100910;
    const u = h.tg.user(112, { chatId: GROUP });
    u.says('quiet at first');
    const second = u.says('and the second');
    // Its "queued" notice comes before the first answer has a word to show.
    const queued = await reply(GROUP, /Queued/);
    expect(queued.replyTo).toBe(second);
    releaseQuiet();
    const first = await reply(GROUP, /Answered after a pause$/);
    const answer = await reply(GROUP, /echo: and the second$/);
    // Before, the second answer took the notice's place, above the first answer.
    expect(answer.messageId).toBeGreaterThan(first.messageId);
    expect(answer.replyTo).toBe(second);
    await turnsDone(h, u);
    const texts = h.tg.botMessages(GROUP).map((m) => m.text);
    expect(texts.filter((t) => /Queued/.test(t))).toEqual([]);
    expect(texts.filter((t) => /echo: and the second$/.test(t))).toHaveLength(1);
  });

  it('/stop sent right behind a message, the two fetched together, stops that message before it reaches the brain', async () => {
    const GROUP = -100920;
    const u = h.tg.user(113, { chatId: GROUP });
    const before = chatRequests().length;
    // One getUpdates answer holds both, as after a restart: /stop is handled apart, and came first.
    const message = u.says('delete every draft');
    u.says('/stop');
    await reply(GROUP, /Nothing is running/);
    // A chat's messages go out in order: the sentinel's answer comes after what was said of the stopped one.
    await turnsDone(h, u);
    // Before, the message was answered in full after the /stop said nothing was running.
    expect(asked().slice(before).map(String)).toEqual([expect.stringMatching(/^sentinel \d+ end$/)]);
    const told = h.tg
      .botMessages(GROUP)
      .find((m) => /^⚙️ \[proxy\] ⏹ Not answered: the \/stop sent after/.test(m.text));
    expect(told?.replyTo).toBe(message);
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
