import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeLlama, startFakeLlama } from './fakes/llama.js';
import { clockFromNoonYesterday } from './helpers/clock.js';
import { randomPng } from './helpers/images.js';
import { type Harness, nextLog, OWNER, startHarness } from './telegram-harness.js';

let h: Harness;
let llama: FakeLlama;
const LOAD_MS = 1000;

beforeAll(async () => {
  llama = await startFakeLlama();
  h = await startHarness({
    llama,
    config: {
      modes: { big: { kind: 'llama', description: 'Big model', llamaModel: 'big' } },
      llama: { models: { big: { start: [[process.execPath, '-e', loadScript(llama.url, LOAD_MS)]] } } },
    },
  });
  llama.script((body) => {
    const last = body.messages?.at(-1)?.content;
    return { chunks: [`echo: ${typeof last === 'string' ? last : JSON.stringify(last)}`] };
  });
});
afterAll(async () => {
  await h.close();
  await llama.close();
});

/** A model start command: makes the fake llama-server load for `ms` (503 on /health meanwhile). */
function loadScript(url: string, ms: number): string {
  return `fetch(${JSON.stringify(`${url}/_fake/load`)}, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ms: ${ms} }) }).then((r) => process.exit(r.ok ? 0 : 1))`;
}

const last = (chatId: number) => h.tg.lastBotMessage(chatId)?.text ?? '';
const reply = (chatId: number, pattern: RegExp, timeoutMs = 30_000) =>
  h.tg.waitFor(() => h.tg.botMessages(chatId).find((m) => pattern.test(m.text)), { timeoutMs });
/** Turns the fake model was asked for; readiness probes (/health) come and go on their own. */
const completions = () => llama.requests.filter((r) => r.path === '/v1/chat/completions').length;

describe('commands', () => {
  it('registers the command menu in English and French', async () => {
    await h.tg.waitFor(() => h.tg.commands.has('fr'));
    const en = h.tg.commands.get('')?.map((c) => c.command);
    expect(en).toEqual(['mode', 'stop', 'new', 'run', 'usage', 'status', 'creds', 'upgrade', 'help']);
    expect(h.tg.commands.get('fr')?.find((c) => c.command === 'stop')?.description).toMatch(/Interrompre/);
  });

  it('/start and /help explain the bot, in the user’s language', async () => {
    h.tg.user(112).says('/start');
    const start = await reply(112, /Hello/);
    expect(start.text).toContain('/mode');
    expect(start.text).toContain('/stop');
    expect(start.text).toContain('⚙️ [proxy]');
    h.tg.user(113, { languageCode: 'fr' }).says('/help');
    const help = await reply(113, /Vos messages vont au cerveau actif/);
    expect(help.text).toMatch(/\n\/usage : /);
    // No transcription here: /help says what a voice message needs, as the voice reply does.
    expect(help.text).toContain('les messages vocaux demandent une transcription, non configurée ici');
  });

  it('/mode shows a keyboard; a press switches, waits for the slow upstream, edits the message and sends the wake notice after', async () => {
    h.tg.user(OWNER).says('/mode');
    const menu = await reply(OWNER, /Modes/);
    const keyboard = menu.replyMarkup as { inline_keyboard: { text: string; callback_data: string }[][] };
    const buttons = keyboard.inline_keyboard.flat();
    expect(buttons.map((b) => b.callback_data)).toEqual([
      'bs:mode:anklume',
      'bs:mode:assistant',
      'bs:mode:local',
      'bs:mode:big',
    ]);
    expect(buttons.find((b) => b.callback_data === 'bs:mode:local')?.text).toMatch(/^▶ local ✅/);
    expect(buttons.find((b) => b.callback_data === 'bs:mode:assistant')?.text).toMatch(/💤/);
    // The legend is true of the Claude modes shown 💤: a switch loads nothing there, it waits for
    // them (test/mode-keyboard.test.ts: a model a switch loads). It said "switching to it loads it".
    expect(menu.text.split('\n').at(-1)).toBe(
      '💤 = not ready now. Switching to anklume, assistant waits for it to be ready, or says why it is not.',
    );

    const pressedAt = Date.now();
    h.tg.user(OWNER).presses(menu.messageId, 'bs:mode:big');
    await h.tg.waitFor(() => h.tg.callbackAnswers.length > 0);
    await h.tg.waitFor(() => /Switching to big/.test(menu.text));
    expect(menu.replyMarkup).toBeUndefined();
    const wake = await reply(OWNER, /Mode big is awake/, 10_000);
    const wakeCall = h.tg
      .callsOf('sendMessage', OWNER)
      .find((c) => typeof c.params.text === 'string' && c.params.text.includes('is awake'));
    expect((wakeCall?.at ?? 0) - pressedAt).toBeGreaterThanOrEqual(LOAD_MS);
    expect(wake.text).toMatch(/^⚙️ \[proxy\] Mode big is awake \(Big model\)\. Switched from local in/);
    await h.tg.waitFor(() => /✅ Mode big is ready/.test(menu.text));
    expect(menu.history.map((t) => t.split('\n')[0])).toEqual([
      '⚙️ [proxy] Modes: pick one',
      '⚙️ [proxy] Switching to big… (waiting until it answers)',
      expect.stringMatching(/^⚙️ \[proxy\] ✅ Mode big is ready \(from local in \d/),
    ]);
    expect(h.service.core.switcher.active().id).toBe('big');
  });

  it('/mode local switches directly and a switch request in words is answered by brainstem', async () => {
    h.tg.user(OWNER).says('/mode local');
    await reply(OWNER, /✅ Mode local is ready \(from big/);
    await reply(OWNER, /Mode local is awake/);
    expect(h.service.core.switcher.active().id).toBe('local');
    const before = completions();
    h.tg.user(OWNER).says('switch to local please');
    await reply(OWNER, /Already in mode local/);
    h.tg.user(OWNER).says('/mode nowhere');
    await reply(OWNER, /unknown mode "nowhere"/);
    expect(completions()).toBe(before);
    // A menu from before a mode left the config: its button says the mode is gone, not that it switches.
    h.tg.user(OWNER).says('/mode');
    const menu = await h.tg.waitFor(() =>
      h.tg
        .botMessages(OWNER)
        .filter((m) => m.replyMarkup !== undefined && /Modes/.test(m.text))
        .at(-1),
    );
    const press = h.tg.user(OWNER).presses(menu.messageId, 'bs:mode:gone');
    const answer = await h.tg.waitFor(() => h.tg.callbackAnswers.find((a) => a.callbackQueryId === press));
    expect(answer.text).toBe('There is no mode gone any more.');
    // Data no mode id fits (an older version's button) is answered as a button that no longer works.
    const odd = h.tg.user(OWNER).presses(menu.messageId, 'bs:mode:Not A Mode!');
    const oddAnswer = await h.tg.waitFor(() => h.tg.callbackAnswers.find((a) => a.callbackQueryId === odd));
    expect(oddAnswer.text).toBe('This button no longer works.');
    await h.tg.waitFor(() => /unknown mode "gone"\. Modes: anklume, assistant, local, big\./.test(menu.text));
  });

  it('/usage shows the periods, modes and sessions; /usage 30d one period; a bad period is explained', async (ctx) => {
    // Modes and sessions are this month's: a run where the month ended between the turn and /usage
    // showed neither (brainstem runs in this process, on this clock).
    clockFromNoonYesterday(ctx);
    h.tg.user(114).says('count me');
    await reply(114, /echo: count me/);
    h.tg.user(114).says('/usage');
    const usage = await reply(114, /Usage/);
    for (const label of ['Today (UTC)', 'Last 7 days', 'This month', 'All time', 'By mode', 'Top sessions']) {
      expect(usage.text).toContain(label);
    }
    expect(usage.text).toMatch(/• local: \$0\.00, \d+ turns?/);
    expect(usage.text).toContain('telegram:114 (local)');
    h.tg.user(114).says('/usage 30d');
    const period = await reply(114, /Usage since .* \(30d\)/);
    expect(period.text).toContain('telegram:114');
    h.tg.user(114).says('/usage yesterdayish');
    await reply(114, /I do not understand the period “yesterdayish”/);
    // A bare number is no date, and a period no date can show is no period.
    for (const odd of ['1', '999999999d']) {
      h.tg.user(114).says(`/usage ${odd}`);
      await reply(114, new RegExp(`I do not understand the period “${odd}”`));
    }
    h.tg.user(114).says('/usage 2026-11-01');
    await reply(114, /Usage since 2026-11-01 00:00 UTC/);
    // A day the month lacks is not read as one of the next month's.
    h.tg.user(114).says('/usage 2026-02-30');
    await reply(114, /I do not understand the period “2026-02-30”/);
    // A date to come is understood, and said to be in the future.
    h.tg.user(114).says('/usage 2099-01-01');
    await reply(
      114,
      /The period “2099-01-01” starts in the future \(2099-01-01 00:00 UTC\): nothing has been used in it yet\./,
    );
    h.tg.user(114).says('/usage chart 2099-01-01');
    await reply(114, /The period “2099-01-01” starts in the future/);
  });

  it('/usage speaks French to a French user, its totals and a cost partly estimated included', async () => {
    const row = { mode: 'assistant', sessionKey: 'telegram:113', source: 'test', durationMs: 0 };
    const tokens = { inputTokens: 12_000, outputTokens: 1500, cacheReadTokens: 0, cacheWriteTokens: 300 };
    h.service.core.ledger.record({ ...row, ...tokens, ts: Date.now(), costUsd: 0.25 });
    h.service.core.ledger.record({
      ...row,
      ...tokens,
      ts: Date.now(),
      costUsd: 0.25,
      costBasis: 'estimated',
    });
    h.tg.user(113, { languageCode: 'fr' }).says('/usage 1h');
    const usage = await reply(113, /Consommation depuis/);
    expect(usage.text).toContain(
      '• telegram:113 (assistant) : $0.50 (estimé pour 1 tour), 2 tours, 24k en entrée / 3.0k en sortie, cache 0 lu / 600 écrit',
    );
    expect(usage.text).not.toMatch(/estimated|turns| in \/| out,|read|write/);
    // French typography: a space before every colon.
    expect(usage.text).toMatch(/\nTotal : \$0\.50/);
    // Days and weeks as a French reader types them.
    for (const period of ['7j', '2sem', 'aujourd’hui']) {
      h.tg.user(113, { languageCode: 'fr' }).says(`/usage ${period}`);
      await reply(113, new RegExp(`Consommation depuis .* \\(${period}\\)`));
    }
  });

  it('/usage counts a group upgraded to a supergroup as one conversation, under the supergroup', async () => {
    const GROUP = -4_120;
    const SUPERGROUP = -1_000_000_004_120;
    const spent = (chatId: number, costUsd: number) =>
      h.service.core.ledger.record({
        ...{ mode: 'assistant', source: 'telegram', durationMs: 0, ts: Date.now(), costUsd },
        ...{ inputTokens: 100, outputTokens: 10, cacheReadTokens: 0, cacheWriteTokens: 0 },
        sessionKey: `telegram:${chatId}`,
      });
    // Costlier than any other test's session of the hour (cheaper than the modes of the test below):
    // both among the top five.
    spent(GROUP, 0.9);
    const followed = nextLog(h, (l) => l.msg === 'a group became a supergroup: its conversation follows');
    h.tg.user(119, { chatId: GROUP, basicGroup: true });
    h.tg.migrates(GROUP, SUPERGROUP);
    await followed(2);
    spent(SUPERGROUP, 0.8);
    h.tg.user(119, { chatId: SUPERGROUP }).says('/usage 1h');
    const usage = await reply(SUPERGROUP, /Usage since/);
    expect(usage.text).toContain(`• telegram:${SUPERGROUP} (assistant): $1.70, 2 turns, 200 in / 20 out`);
    expect(usage.text).not.toContain(`telegram:${GROUP} `);
  });

  it('/usage of a period with many modes and long session keys still fits one message: the costliest modes named, the others summed', async () => {
    // Two years back: only this test's period and "All time" see these rows.
    const at = Date.now() - 730 * 86_400_000;
    for (let i = 0; i < 45; i++) {
      h.service.core.ledger.record({
        ts: at + i * 60_000,
        mode: `a-mode-renamed-since-then-number-${String(i).padStart(2, '0')}`,
        // An OpenAI client's `user` (200 characters) names its conversations in the ledger.
        sessionKey: `user:${'u'.repeat(200)}:${i}`,
        source: 'openai',
        costUsd: 1 + i,
        inputTokens: 1_234_567,
        outputTokens: 456_789,
        cacheReadTokens: 12_345_678,
        cacheWriteTokens: 1_234_567,
        durationMs: 1,
        costBasis: 'estimated',
      });
    }
    const chat = -100_115;
    const day = new Date(at).toISOString().slice(0, 10);
    h.tg.user(115, { chatId: chat }).says(`/usage ${day}`);
    // Sent whole, where Telegram refused it as too long and /usage failed.
    const usage = await reply(chat, /Usage since/);
    expect(usage.text.length).toBeLessThanOrEqual(4096);
    expect(usage.text).toContain('• a-mode-renamed-since-then-number-44: $45.00');
    expect(usage.text).toContain('• a-mode-renamed-since-then-number-38: $39.00');
    expect(usage.text).not.toContain('number-37:');
    // The modes past the 7 costliest (ours of $1 to $38, and the other tests' cheaper ones) summed.
    const rest = h.service.core.ledger.byMode(Date.parse(`${day}T00:00Z`), Date.now() + 1).slice(7);
    const cost = rest.reduce((n, m) => n + m.costUsd, 0);
    expect(cost).toBeGreaterThanOrEqual(741);
    expect(usage.text).toContain(`\n• ${rest.length} other modes: $${cost.toFixed(2)} (estimated for `);
    expect(usage.text).toContain(`• user:${'u'.repeat(54)}…`);
  });

  it('/usage with a date and a time reads them as UTC, whatever the server’s time zone', async () => {
    const tz = process.env.TZ;
    // Node applies TZ as soon as it is set: brainstem runs in this process.
    process.env.TZ = 'America/New_York';
    try {
      expect(new Date(Date.UTC(2026, 0, 31, 10)).getHours()).toBe(5);
      h.tg.user(114).says('/usage 2026-01-31 10:00');
      await reply(114, /Usage since 2026-01-31 10:00 UTC/);
    } finally {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    }
  });

  it('answers a command typed with capitals as the command (/Usage 30d is /usage 30d), never by the brain', async () => {
    const asked = completions();
    h.tg.user(119).says('/Usage 30d');
    await reply(119, /Usage since .* \(30d\)/);
    expect(completions()).toBe(asked);
  });

  it('hands a forwarded message to the brain as what someone else wrote: never a command, a switch request or a shortcut of whoever forwarded it', async () => {
    const active = h.service.core.switcher.active().id;
    const other = active === 'big' ? 'local' : 'big';
    const from = { type: 'user', date: 1, sender_user: { id: 999, is_bot: false, first_name: 'Mallory' } };
    for (const text of [`/mode ${other}`, `switch to ${other}`]) {
      const command = text.startsWith('/')
        ? { entities: [{ type: 'bot_command', offset: 0, length: 5 }] }
        : {};
      h.tg.user(OWNER).sends({ text, ...command, forward_origin: from });
      const answer = await reply(OWNER, new RegExp(`echo: [\\s\\S]*\\n${text}$`));
      expect(answer.text).toContain('forwards a message by "Mallory"');
    }
    expect(h.service.core.switcher.active().id).toBe(active);
  });

  it('takes a command word at the start of a caption as the caption of its photo, file or album, never as a command that drops them', async () => {
    const user = h.tg.user(119);
    const said = () => h.tg.botMessages(119).map((m) => m.text);
    const earlier = said().length;
    user.sendsPhoto(randomPng(4, 4), '/new');
    await reply(119, /takes no images/);
    user.sendsDocument('todo.txt', Buffer.from('buy milk'), '/run tests', 'text/plain');
    const doc = await reply(119, /echo: [\s\S]*buy milk/);
    expect(doc.text).toMatch(/\/run tests$/);
    user.sendsDocuments(
      [
        { name: 'a.txt', bytes: Buffer.from('first'), mimeType: 'text/plain' },
        { name: 'b.txt', bytes: Buffer.from('second'), mimeType: 'text/plain' },
      ],
      '/stop',
    );
    const album = await reply(119, /echo: [\s\S]*first[\s\S]*second/);
    expect(album.text).toMatch(/\/stop$/);
    user.sendsAlbum([randomPng(4, 4), randomPng(5, 5)], '/mode big');
    await h.tg.waitFor(() => said().filter((t) => /takes no images/.test(t)).length === 2);
    user.sendsVoice(undefined, '/new');
    await reply(119, /Voice messages need speech to text/);
    // No transcription here: the caption goes alone, the brain told of the recording.
    await reply(119, /echo: \[The user sent a voice note, but it was not transcribed[\s\S]*\n\/new$/);
    // Answered in order: had a caption run its command, its answer would be in here.
    expect(said()).toHaveLength(earlier + 6);
    expect(h.service.core.switcher.active().id).not.toBe('big');
  });

  it('/creds says why the file cannot be read in the reader’s language, then shows subscription, expiry, time left and the file, never a token', async () => {
    const file = path.join(h.dir, 'credentials.json');
    h.tg.user(115, { languageCode: 'fr' }).says('/creds');
    const missing = await reply(115, /Identifiants Claude/);
    expect(missing.text).toContain('❌ Illisibles : le fichier n’existe pas.');
    expect(missing.text).toContain(`Fichier : ${file}`);
    const expiresAt = Date.now() + 5 * 3_600_000;
    await writeFile(
      file,
      JSON.stringify({
        claudeAiOauth: {
          accessToken: 'sk-ant-oat01-SECRET-ACCESS',
          refreshToken: 'sk-ant-ort01-SECRET-REFRESH',
          expiresAt,
          scopes: ['user:inference'],
          subscriptionType: 'max',
          rateLimitTier: 'default_claude_max_5x',
        },
      }),
    );
    h.tg.user(115, { languageCode: 'en' }).says('/creds');
    const creds = await reply(115, /Claude credentials/);
    expect(creds.text).toContain('Subscription: max, default_claude_max_5x');
    expect(creds.text).toMatch(/Expires \d{4}-\d\d-\d\d \d\d:\d\d UTC, in (4 h 5\d|5 h 00) min/);
    expect(creds.text).toContain('Last renewal seen');
    expect(creds.text).toContain(file);
    expect(JSON.stringify(h.tg.calls)).not.toContain('SECRET');
  });

  it('/status gives the active mode, readiness, route, uptime and version', async () => {
    h.tg.user(116).says('/status');
    const status = await reply(116, /Status/);
    expect(status.text).toContain('Active mode: local');
    expect(status.text).toMatch(/✅ local ← \(llama\)/);
    expect(status.text).toMatch(/❌ assistant \(claude\)/);
    expect(status.text).toContain('Route: direct');
    expect(status.text).toMatch(/Uptime: /);
    expect(status.text).toMatch(/Versions: brainstem \d+\.\d+\.\d+, Node /);
    h.tg.user(116, { languageCode: 'fr' }).says('/status');
    const statut = await reply(116, /Statut/);
    // French typography: a space before every colon, the lines built for both languages too.
    expect(statut.text).toMatch(/✅ local ← \(llama\) : /);
    expect(statut.text).toMatch(/\nVersions : brainstem /);
    // The brains' own words too: the Claude CLI configured here does not exist.
    expect(statut.text).toContain('❌ assistant (claude) : CLI Claude Code introuvable : « ');
    expect(statut.text).not.toMatch(/\S:(\s|$)/m);
  });

  it('refuses a stranger once, naming their id, logs it, and nothing reaches a brain', async () => {
    const before = completions();
    const stranger = h.tg.user(999);
    const refusals = () =>
      h.logs.filter((l) => l.userId === 999 && /not on the allow-list/.test(String(l.msg)));
    stranger.says('hello?');
    stranger.says('/mode local');
    // One more in each of their lanes (the chat's messages, its control commands): a lane handles
    // its updates in order, so once these are refused too, so were the two above, replies included.
    stranger.says('still there?');
    stranger.says('/status');
    await h.tg.waitFor(() => refusals().length === 4);
    expect(h.tg.botMessages(999)).toHaveLength(1);
    expect(h.tg.botMessages(999)[0]?.text).toMatch(/Your Telegram user id is 999/);
    expect(completions()).toBe(before);
  });

  it('asks whoever writes anonymously or as a channel to write as themselves, never showing the shared sender as their id', async () => {
    const before = completions();
    const [groupA, groupB] = [-100_777, -100_778];
    /** Telegram's sender of every anonymous group admin, in every group. */
    const anonymousAdmin = {
      id: 1087968824,
      is_bot: true,
      first_name: 'Group',
      username: 'GroupAnonymousBot',
    };
    // A message addressing the bot: in a group, only those are answered a refusal.
    const mention = (text: string) => ({
      text,
      entities: [{ type: 'mention', offset: text.indexOf('@'), length: '@brainstem_test_bot'.length }],
    });
    const asGroup = (chatId: number) => ({
      ...mention('@brainstem_test_bot hello'),
      from: anonymousAdmin,
      sender_chat: { id: chatId, type: 'supergroup', title: 'Group' },
    });
    h.tg.user(999, { chatId: groupA }).sends(asGroup(groupA));
    // Another group's anonymous admin is someone else: refused in turn, although the sender is the same.
    h.tg.user(999, { chatId: groupB }).sends(asGroup(groupB));
    // A post of the linked channel, forwarded to its group by Telegram (777000).
    h.tg.user(999, { chatId: groupA }).sends({
      ...mention('news for @brainstem_test_bot'),
      from: { id: 777000, is_bot: false, first_name: 'Telegram' },
      sender_chat: { id: -100_779, type: 'channel', title: 'News' },
      is_automatic_forward: true,
    });
    const refusal =
      '⚙️ [proxy] This bot is private, and this message does not say who you are: it was sent anonymously or as a channel. Write as yourself to get your Telegram user id for the owner.';
    await h.tg.waitFor(() => h.tg.botMessages(groupA).length === 2 && h.tg.botMessages(groupB).length === 1);
    expect([...h.tg.botMessages(groupA), ...h.tg.botMessages(groupB)].map((m) => m.text)).toEqual([
      refusal,
      refusal,
      refusal,
    ]);
    expect(completions()).toBe(before);
  });

  it('saves documents under the data dir and passes their name, size, path and, to a local model, their text (photos: telegram-media)', async () => {
    h.tg
      .user(117)
      .sendsDocument('../../notes file.txt', new TextEncoder().encode('hello'), undefined, 'text/plain');
    const doc = await reply(117, /document "\.\.\/\.\.\/notes file\.txt" \(text\/plain, 5 bytes\), saved at/);
    // A local model cannot open a path: it gets the text itself.
    expect(doc.text).toMatch(/; its text:\]\n\nhello\n\n\[end of "\.\.\/\.\.\/notes file\.txt"\]$/);
    const docPath = /saved at (\S+);/.exec(doc.text)?.[1] ?? '';
    expect(path.dirname(docPath)).toBe(path.join(h.service.core.config.dataDir, 'uploads', '117'));
    expect(path.basename(docPath)).toMatch(/notes_file\.txt$/);
    expect(readFileSync(docPath, 'utf8')).toBe('hello');

    // One that is not text: the user hears the local model cannot read it, and nothing goes to it.
    const before = completions();
    h.tg
      .user(117)
      .sendsDocument('report.pdf', Buffer.from('%PDF-1.4\0binary'), 'summarise', 'application/pdf');
    const refused = await reply(117, /only reads text/);
    expect(refused.text).toBe(
      '⚙️ [proxy] The local model of mode local only reads text, and report.pdf (application/pdf, 15 bytes) is not text, so nothing was sent to it. Send the text itself or switch to a Claude mode (/mode), which opens files.',
    );
    expect(completions()).toBe(before);
  });

  it('answers voice messages without transcription with how to turn it on, and stickers with a clear "not supported"', async () => {
    h.tg.user(118).sendsVoice();
    const voice = await reply(118, /Voice messages need speech to text, which is not set up/);
    expect(voice.text).toContain('transcription.url');
    expect(voice.text).toContain('transcription.command');
    h.tg.user(118, { languageCode: 'fr' }).sendsSticker();
    await reply(118, /Les autocollants ne sont pas pris en charge/);
    expect(last(118)).toContain('⚙️ [proxy]');
  });
});
