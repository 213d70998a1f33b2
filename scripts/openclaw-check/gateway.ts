/**
 * The gateway stage of `npm run openclaw-check`: OpenClaw's gateway runs its own Telegram
 * channel with its Bot API root on brainstem's front, as `openclaw-config --apply` sets it,
 * brainstem is the only poller of the Bot API emulator (test/fakes/telegram.ts), and a user
 * writes to the bot, in a private chat and in a group. Checked: the set-up, the merged
 * command menus, a text answered by OpenClaw through brainstem's model endpoint, a streamed
 * preview edited in place, a 429 that reaches OpenClaw with its retry_after, a photo that
 * reaches the model byte for byte, brainstem's /mode kept from OpenClaw, OpenClaw's /new and
 * /oc_usage reaching it, mentions in a group, an album, a forum topic, a reaction, a voice
 * note, OpenClaw's /model picker walked with its buttons and brainstem's own button, a gateway
 * restart with messages waiting, one poller at Telegram, and the bot token in no log line.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { PROXY_TAG } from '../../src/notices.js';
import type { FakeReply, FakeRequest } from '../../test/fakes/llama.js';
import { type FakeTelegram, startFakeTelegram } from '../../test/fakes/telegram.js';
import { randomPng } from '../../test/helpers/images.js';
import { freePort, spawnService } from '../../test/helpers/process.js';
import {
  type ChatBody,
  killGroup,
  openclawConfig,
  openclawEnv,
  type StageContext,
  show,
  stopService,
} from './shared.js';

/** The one user, in a private chat; on brainstem's and OpenClaw's allow-lists. */
const USER = 4242;
/** A supergroup the user and the bot are in. */
const GROUP = -1001234567890;
/** A forum supergroup, where the user writes in a topic; OpenClaw answers there without a mention. */
const FORUM = -1009876543210;
const TOPIC = 7;
/** The upstream model name of brainstem's second llama mode, `helper`. */
const HELPER_MODEL = 'helper-model';
/** The gateway takes ~15 s to poll here and its first turn ~10 s (a loaded machine more); later turns 2-4 s. */
const FIRST_WAIT_MS = 180_000;
const WAIT_MS = 90_000;
const STALL_NOTICE_MS = 4000;

export async function gatewayChecks({ openclaw, llama, check, dir, defer }: StageContext): Promise<void> {
  const { queue, chatRequests } = llama;
  const tg = await startFakeTelegram();
  defer(() => tg.close());
  const ocHome = path.join(dir, 'oc-home');
  const bsHome = path.join(dir, 'bs-home');
  for (const d of [path.join(ocHome, '.openclaw'), bsHome]) mkdirSync(d, { recursive: true });
  const configFile = path.join(dir, 'brainstem.json');
  writeFileSync(
    configFile,
    `${JSON.stringify({
      defaultMode: 'local',
      // helper: a second mode on the same llama-server, for OpenClaw's model picker to pick.
      modes: {
        local: { kind: 'llama', vision: true },
        helper: { kind: 'llama', model: HELPER_MODEL, description: 'A second local model' },
      },
      // A short stall notice, so that a gateway restart shows it.
      telegram: { allowedUsers: [USER], front: { enabled: true, stallNoticeMs: STALL_NOTICE_MS } },
    })}\n`,
  );
  const env: Record<string, string> = {
    BRAINSTEM_CONFIG: configFile,
    BRAINSTEM_DATA_DIR: path.join(dir, 'bs-data'),
    BRAINSTEM_HOST: '127.0.0.1',
    BRAINSTEM_API_TOKEN: randomBytes(24).toString('hex'),
    HOME: bsHome,
    LLAMA_BASE_URL: llama.fake.baseUrl,
    CLAUDE_BIN: '/bin/false',
    TELEGRAM_BOT_TOKEN: tg.token,
    TELEGRAM_API_ROOT: tg.apiRoot,
  };
  const svc = await spawnService(env, { from: 'dist' });
  defer(() => stopService(svc));

  // An openclaw.json as its owner has it (the gateway and who may write to the bot), into
  // which brainstem's block is merged the way the README says.
  const ocFile = path.join(ocHome, '.openclaw', 'openclaw.json');
  const gatewayPort = await freePort();
  writeFileSync(
    ocFile,
    JSON.stringify({
      gateway: {
        mode: 'local',
        port: gatewayPort,
        bind: 'loopback',
        auth: { mode: 'token', token: randomBytes(16).toString('hex') },
      },
      // `partial`: the answer's text streams into a preview edited in place (the default shows a
      // status). In the group, OpenClaw answers only when mentioned.
      channels: {
        telegram: {
          dmPolicy: 'allowlist',
          allowFrom: [String(USER)],
          streaming: { mode: 'partial' },
          groups: {
            [String(GROUP)]: { requireMention: true },
            [String(FORUM)]: { requireMention: false },
          },
        },
      },
    }),
  );
  await openclawConfig(env, new URL(svc.url).port, ['--apply', ocFile]);
  const channel = (
    JSON.parse(readFileSync(ocFile, 'utf8')) as { channels?: { telegram?: Record<string, unknown> } }
  ).channels?.telegram;
  check(
    'setup',
    "openclaw-config --apply points OpenClaw's channel at the front",
    channel?.enabled === true &&
      channel.apiRoot === `${svc.url}/telegram` &&
      channel.botToken === tg.token &&
      channel.dmPolicy === 'allowlist',
    `channels.telegram: enabled ${show(channel?.enabled)}, apiRoot ${show(channel?.apiRoot)} (the front is ${svc.url}/telegram), the bot token ${channel?.botToken === tg.token ? 'set' : 'not set'}, the owner's dmPolicy ${show(channel?.dmPolicy)} kept`,
  );

  let gatewayLog = '';
  /** OpenClaw's gateway, started (again); its output goes to gatewayLog. */
  const startGateway = () => {
    const child = spawn(openclaw.node24, [openclaw.entry, 'gateway', 'run', '--port', String(gatewayPort)], {
      cwd: dir,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: openclawEnv(openclaw, ocHome),
    });
    defer(() => killGroup(child));
    const append = (d: Buffer) => {
      gatewayLog += d.toString();
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    return { child, exited: once(child, 'exit').then(([code]) => code as number | null) };
  };
  let gateway = startGateway();
  /** What `test` returns once it holds, or undefined after `ms`; throws if the gateway exits first. */
  const until = <T>(what: string, test: () => T | undefined | false | null, ms = WAIT_MS) =>
    waitOrExit(tg, gateway.exited, () => gatewayLog, what, test, ms);
  /** The model's next answer; a reply an earlier stage left unused goes. */
  const answer = (reply: FakeReply) => {
    queue.length = 0;
    queue.push(reply);
  };
  const user = tg.user(USER);
  const bot = () => tg.botMessages(USER);

  // Telegram shows a user the list of their language if there is one: brainstem's French
  // menu must carry OpenClaw's commands too, or a French user would not see them.
  const menus =
    (await until(
      'OpenClaw registers its commands through the front',
      () => {
        const lists = [...tg.commands].map(([lang, list]) => ({ lang, names: list.map((c) => c.command) }));
        return lists.length > 0 && lists.every((l) => l.names.includes('new')) && lists;
      },
      FIRST_WAIT_MS,
    )) ?? [];
  check(
    'setup',
    "each language's menu holds brainstem's and OpenClaw's commands",
    menus.length >= 2 &&
      menus.every(
        (l) =>
          l.names.includes('mode') &&
          l.names.includes('new') &&
          l.names.includes('oc_usage') &&
          l.names.length <= 100,
      ),
    menus
      .map(
        (l) =>
          `${l.lang || 'default'}: ${l.names.length} (${l.names.slice(0, 3).join(', ')}, …, ${l.names.filter((n) => n.startsWith('oc_')).join(', ')})`,
      )
      .join('; ') || "no menu with OpenClaw's /new",
  );

  // A text: OpenClaw's channel fetches it from the front, asks brainstem's model, answers through the front.
  let before = chatRequests().length;
  answer({ chunks: ['FRONT-ONE ', 'marker 1618'] });
  user.says('hello through the front');
  const first = await until(
    'the answer to the first text',
    () => bot().find((m) => m.text.includes('FRONT-ONE')),
    FIRST_WAIT_MS,
  );
  check(
    'text',
    "OpenClaw's answer reaches the chat",
    first?.text.includes('FRONT-ONE marker 1618') === true,
    `the chat got ${show(bot().map((m) => m.text.slice(0, 80)))}`,
  );
  check(
    'text',
    'one model request',
    chatRequests().length - before === 1,
    `the fake got ${chatRequests().length - before} chat request(s)`,
  );

  // A streamed answer: OpenClaw's preview is sent, then edited through the front as the text grows.
  let calls = tg.calls.length;
  answer({ chunks: Array.from({ length: 25 }, (_, i) => `word${i} `), chunkDelayMs: 200 });
  user.says('stream me something');
  const streamed = await until('the streamed answer', () => bot().find((m) => m.text.includes('word24')));
  const edits = tg.calls.slice(calls).filter((c) => c.method === 'editMessageText' && c.ok).length;
  check(
    'stream',
    'the preview is edited in place',
    edits >= 1 && streamed !== undefined && streamed.edits >= 1 && streamed.text.includes('word0 word1'),
    streamed
      ? `${edits} editMessageText call(s) reached Telegram; the message, edited ${streamed.edits} time(s), ends ${show(streamed.text.slice(-30))}`
      : `no message with the whole answer; ${edits} editMessageText call(s) reached Telegram`,
  );

  // A 429 from Telegram goes back to OpenClaw as it came, and OpenClaw waits retry_after.
  calls = tg.calls.length;
  tg.rateLimit('sendMessage', 1, 2);
  answer({ chunks: ['FRONT-LIMITED ', 'answer'] });
  user.says('a turn Telegram rate-limits');
  await until('the rate-limited answer', () => bot().find((m) => m.text.includes('FRONT-LIMITED')));
  const sends = tg.calls.slice(calls).filter((c) => c.method === 'sendMessage');
  const refused = sends.find((c) => c.errorCode === 429);
  const retried = sends.find((c) => c.ok && refused !== undefined && c.at > refused.at);
  check(
    '429',
    "OpenClaw waits Telegram's retry_after",
    refused !== undefined && retried !== undefined && retried.at - refused.at >= 2000,
    refused && retried
      ? `sendMessage refused with 429 (retry after 2 s), sent again ${retried.at - refused.at} ms later`
      : `sendMessage calls: ${show(sends.map((c) => c.errorCode ?? 'ok'))}`,
  );

  // A photo: OpenClaw fetches it through the front (getFile and the download) and gives it to the model.
  before = chatRequests().length;
  const png = randomPng(64, 48);
  answer({ chunks: ['FRONT-PHOTO ', 'seen'] });
  user.sendsPhoto(png, 'what is in this picture?');
  await until('the answer to the photo', () => bot().find((m) => m.text.includes('FRONT-PHOTO')));
  const photoRequests = chatRequests().slice(before);
  check(
    'photo',
    'the photo reaches the model byte for byte',
    photoRequests.some((r) => JSON.stringify(r.body).includes(`;base64,${png.toString('base64')}`)),
    `${photoRequests.length} model request(s); ${tg.callsOf('getFile').length} getFile call(s) reached Telegram; the PNG's ${png.length} bytes ${photoRequests.some((r) => JSON.stringify(r.body).includes(png.toString('base64'))) ? 'are' : 'are not'} in a request as a data URL`,
  );

  // brainstem's /mode is answered by brainstem and never reaches OpenClaw: OpenClaw handles a
  // chat's updates in order, so the text after it shows what OpenClaw got.
  const shown = bot().length;
  before = chatRequests().length;
  user.says('/mode');
  const modeUpdate = Number(tg.updateLog.at(-1)?.update_id);
  await until("brainstem's answer to /mode", () =>
    bot()
      .slice(shown)
      .find((m) => m.replyMarkup !== undefined),
  );
  answer({ chunks: ['FRONT-AFTER ', 'the menu'] });
  user.says('after the menu');
  await until('the answer after /mode', () => bot().find((m) => m.text.includes('FRONT-AFTER')));
  const since = bot().slice(shown);
  const askedMode = chatRequests()
    .slice(before)
    .some((r) => userTexts(r).some((t) => /(^|\s)\/mode(\s|$)/.test(t)));
  check(
    'mode',
    '/mode is answered by brainstem alone',
    since.length === 2 &&
      since[0]?.text.includes('Modes') === true &&
      since[1]?.text.includes('FRONT-AFTER') === true &&
      !askedMode,
    `after /mode the chat got ${show(since.map((m) => m.text.slice(0, 40)))}; ${askedMode ? 'a model request carries /mode' : 'no model request carries /mode'}; OpenClaw's log ${gatewayLog.includes(`updateId=${modeUpdate} `) ? 'names' : 'does not name'} its update ${modeUpdate}`,
  );

  // OpenClaw's /new reaches OpenClaw, which starts a new session.
  const beforeNew = bot().length;
  user.says('/new');
  await until("OpenClaw's answer to /new", () =>
    bot()
      .slice(beforeNew)
      .find((m) => /new session/i.test(m.text)),
  );
  const afterNew = bot().slice(beforeNew);
  check(
    'new',
    '/new reaches OpenClaw',
    afterNew.some((m) => /new session/i.test(m.text)),
    `after /new the chat got ${show(afterNew.map((m) => m.text.slice(0, 80)))}`,
  );

  // A command both answer: brainstem's is /usage, OpenClaw's is typed /oc_usage and reaches it as /usage.
  const beforeUsage = bot().length;
  before = chatRequests().length;
  user.says('/usage');
  const ours = await until("brainstem's answer to /usage", () => bot()[beforeUsage]);
  user.says('/oc_usage');
  const theirs = await until("OpenClaw's answer to /oc_usage", () => bot()[beforeUsage + 1]);
  check(
    'usage',
    "/usage is brainstem's, /oc_usage reaches OpenClaw",
    ours?.text.startsWith(PROXY_TAG) === true &&
      theirs !== undefined &&
      !theirs.text.startsWith(PROXY_TAG) &&
      chatRequests().length === before,
    `/usage got ${show(ours?.text.slice(0, 60))}; /oc_usage got ${show(theirs?.text.slice(0, 60))}; ${chatRequests().length - before} model request(s)`,
  );

  // A group: a message that mentions the bot is OpenClaw's to answer; one that does not still
  // reaches it (OpenClaw keeps it as the group's context) but gets no answer; brainstem's
  // command, addressed to the bot, is brainstem's alone.
  const member = tg.user(USER, { chatId: GROUP });
  const inGroup = () => tg.botMessages(GROUP);
  const named = (body: ChatBody, words: string[]) =>
    words.filter((w) => newTurnTexts(body).some((t) => t.includes(w)));
  llama.respond = (body) => ({ chunks: [`FRONT-GROUP answers ${named(body, ['DELTA', 'ECHO']).join(' ')}`] });
  before = chatRequests().length;
  member.says(`@${tg.botUsername} hello group DELTA`);
  const greeted = await until(
    'the answer in the group',
    () => inGroup().find((m) => m.text.includes('DELTA')),
    FIRST_WAIT_MS,
  );
  check(
    'group',
    'a mention is answered by OpenClaw in the group',
    greeted !== undefined,
    `the group got ${show(inGroup().map((m) => m.text.slice(0, 50)))}`,
  );
  member.says('just chatting FOXTROT');
  const groupShown = inGroup().length;
  const beforeMode = chatRequests().length;
  member.says(`/mode@${tg.botUsername}`);
  await until("brainstem's answer to /mode in the group", () =>
    inGroup()
      .slice(groupShown)
      .find((m) => m.replyMarkup !== undefined),
  );
  member.says(`@${tg.botUsername} and now ECHO`);
  await until('the answer after /mode in the group', () => inGroup().find((m) => m.text.includes('ECHO')));
  const groupSince = inGroup().slice(groupShown);
  const groupRequests = chatRequests().slice(beforeMode);
  const modeAsked = groupRequests.some((r) => userTexts(r).some((t) => /(^|\s)\/mode(@\w+)?(\s|$)/.test(t)));
  const sawFoxtrot = groupRequests.some((r) => JSON.stringify(r.body).includes('FOXTROT'));
  check(
    'group',
    "/mode@bot is brainstem's; an unmentioned message reaches OpenClaw unanswered",
    groupSince.length === 2 &&
      groupSince[0]?.text.includes('Modes') === true &&
      groupSince[1]?.text.includes('ECHO') === true &&
      !modeAsked &&
      sawFoxtrot,
    `after the unmentioned message and /mode the group got ${show(groupSince.map((m) => m.text.slice(0, 40)))}; ${groupRequests.length} model request(s), ${modeAsked ? 'one carrying /mode' : 'none carrying /mode'}, ${sawFoxtrot ? "the unmentioned message among the next turn's context" : 'the unmentioned message in none'}`,
  );
  llama.respond = undefined;

  // An album: Telegram sends one message per photo; OpenClaw takes them as one turn, each photo
  // fetched through the front.
  const album = [randomPng(40, 30), randomPng(30, 40)];
  before = chatRequests().length;
  answer({ chunks: ['FRONT-ALBUM ', 'seen'] });
  user.sendsAlbum(album, 'two pictures');
  await until('the answer to the album', () => bot().find((m) => m.text.includes('FRONT-ALBUM')));
  const albumRequests = chatRequests().slice(before);
  const carries = (r: FakeRequest, png: Buffer) =>
    JSON.stringify(r.body).includes(`;base64,${png.toString('base64')}`);
  check(
    'album',
    'both photos of an album reach the model in one turn',
    albumRequests.length === 1 && album.every((png) => albumRequests.some((r) => carries(r, png))),
    `${albumRequests.length} model request(s); photo 1 ${albumRequests.some((r) => carries(r, album[0] as Buffer)) ? 'in' : 'not in'} them, photo 2 ${albumRequests.some((r) => carries(r, album[1] as Buffer)) ? 'in' : 'not in'}`,
  );

  // A forum topic: OpenClaw's answer and brainstem's own go to the topic the user wrote in.
  const inTopic = tg.user(USER, { chatId: FORUM, topicId: TOPIC });
  const forum = () => tg.botMessages(FORUM);
  answer({ chunks: ['FRONT-TOPIC ', 'answer'] });
  inTopic.says('a question in the topic');
  const topicAnswer = await until('the answer in the topic', () =>
    forum().find((m) => m.text.includes('FRONT-TOPIC')),
  );
  inTopic.says('/mode');
  const topicMenu = await until("brainstem's /mode in the topic", () =>
    forum().find((m) => m.text.includes('Modes')),
  );
  check(
    'topic',
    'answers go to the topic the user wrote in',
    topicAnswer?.topicId === TOPIC && topicMenu?.topicId === TOPIC,
    `OpenClaw's answer in topic ${show(topicAnswer?.topicId)}, brainstem's /mode in topic ${show(topicMenu?.topicId)} (the user wrote in ${TOPIC})`,
  );

  // A reaction: Telegram sends one only to a poller that asks for it; OpenClaw asks the front,
  // brainstem asks Telegram, and OpenClaw tells its model on the next turn.
  const reacted = bot().find((m) => m.text.includes('FRONT-ONE'));
  if (reacted) user.reacts(reacted.messageId, '👍');
  // OpenClaw takes a chat's updates in order: the reaction before the next text.
  before = chatRequests().length;
  answer({ chunks: ['FRONT-REACTED ', 'seen'] });
  user.says('did you see my reaction?');
  await until('the answer after the reaction', () => bot().find((m) => m.text.includes('FRONT-REACTED')));
  const toldReaction = chatRequests()
    .slice(before)
    .some((r) => /reaction added: 👍/.test(JSON.stringify(r.body)));
  const asked = tg.polling.allowedUpdates ?? [];
  check(
    'reaction',
    "a reaction to OpenClaw's answer reaches OpenClaw's model",
    asked.includes('message_reaction') && toldReaction,
    `brainstem asked Telegram for ${show(asked)}; the next turn's request ${toldReaction ? 'tells' : 'does not tell'} of the 👍`,
  );

  // A voice note: OpenClaw fetches it through the front and keeps it as an attachment of the
  // turn (with no speech-to-text set up here it says it did not transcribe it); the file it
  // keeps must be the one sent, byte for byte.
  const voice = randomBytes(6000);
  const voiceFiles = tg.callsOf('getFile').length;
  before = chatRequests().length;
  answer({ chunks: ['FRONT-VOICE ', 'heard'] });
  user.sendsVoice(voice);
  await until('the answer to the voice note', () => bot().find((m) => m.text.includes('FRONT-VOICE')));
  const voiceTurns = chatRequests()
    .slice(before)
    .map((r) => newTurnTexts(r.body).join(' '));
  const kept = voiceTurns
    .map((t) => /\[media attached: (\S+\.ogg) \(audio\/ogg\)\]/.exec(t)?.[1])
    .find(Boolean);
  const same = kept !== undefined && existsSync(kept) && readFileSync(kept).equals(voice);
  check(
    'voice',
    'a voice note reaches OpenClaw byte for byte',
    tg.callsOf('getFile').length > voiceFiles && voiceTurns.length === 1 && same,
    `${tg.callsOf('getFile').length - voiceFiles} getFile call(s) reached Telegram; ${voiceTurns.length} model request(s); ${kept ? `OpenClaw kept the audio as ${path.basename(kept)}, ${same ? 'the bytes sent' : 'not the bytes sent'}` : `no attached audio in the turn: ${show(voiceTurns.map((t) => t.slice(0, 300)))}`}`,
  );

  // Buttons: OpenClaw's /model picker is walked through the front (providers, brainstem's
  // models, one picked), each press answered by OpenClaw and the picker edited in place; the
  // next turn asks brainstem for the model picked. A press on one of brainstem's own buttons
  // (`bs:` data) stays brainstem's.
  type Button = { text: string; callback_data?: string };
  const buttons = (m: { replyMarkup?: unknown } | undefined): Button[] =>
    ((m?.replyMarkup as { inline_keyboard?: Button[][] } | undefined)?.inline_keyboard ?? []).flat();
  const beforePicker = bot().length;
  user.says('/model');
  const picker = await until("OpenClaw's /model picker", () =>
    bot()
      .slice(beforePicker)
      .find((m) => buttons(m).some((b) => b.callback_data === 'mdl_prov')),
  );
  /** Presses the picker's button whose data `pick` chooses; what the press led to, for the check. */
  const press = async (step: string, pick: (data: string) => boolean) => {
    const button = buttons(picker).find((b) => b.callback_data !== undefined && pick(b.callback_data));
    if (!picker || !button?.callback_data)
      return `${step}: no such button among ${show(buttons(picker).map((b) => b.callback_data))}`;
    const markup = JSON.stringify(picker.replyMarkup);
    const id = user.presses(picker.messageId, button.callback_data);
    const answered = await until(`OpenClaw's answer to ${step}`, () =>
      tg.callbackAnswers.some((a) => a.callbackQueryId === id),
    );
    const edited = await until(
      `the picker after ${step}`,
      () => JSON.stringify(picker.replyMarkup) !== markup,
    );
    return `${step} (${button.callback_data}): ${answered ? 'answered' : 'not answered'}, ${edited ? `the picker now offers ${show(buttons(picker).map((b) => b.text))}` : 'the picker unchanged'}`;
  };
  const steps = [
    await press('providers', (d) => d === 'mdl_prov'),
    await press("brainstem's models", (d) => /^mdl_list_brainstem_1$|^mdl1~p:/.test(d)),
    await press('helper', (d) => d === 'mdl_sel_brainstem/helper'),
  ];
  before = chatRequests().length;
  answer({ chunks: ['FRONT-PICKED ', 'model'] });
  user.says('which model answers now?');
  await until('the answer after the model was picked', () =>
    bot().find((m) => m.text.includes('FRONT-PICKED')),
  );
  const picked = chatRequests()
    .slice(before)
    .map((r) => (r.body as { model?: string } | undefined)?.model);
  const menu = [...bot()].reverse().find((m) => buttons(m).some((b) => b.callback_data === 'bs:mode:local'));
  const ourPress = menu ? user.presses(menu.messageId, 'bs:mode:local') : undefined;
  const ourUpdate = Number(tg.updateLog.at(-1)?.update_id);
  const ourAnswer = await until("brainstem's answer to its button", () =>
    tg.callbackAnswers.find((a) => a.callbackQueryId === ourPress),
  );
  check(
    'buttons',
    "OpenClaw's model picker works through the front, and picks brainstem's mode",
    steps.every((st) => st.includes('answered, the picker now')) &&
      picked.length === 1 &&
      picked[0] === HELPER_MODEL,
    `${steps.join('; ')}; the next turn's model request(s) named ${show(picked)} upstream (the mode helper's is ${HELPER_MODEL})`,
  );
  check(
    'buttons',
    "a press on brainstem's button stays brainstem's",
    ourAnswer !== undefined && !gatewayLog.includes(`updateId=${ourUpdate} `),
    `brainstem's mode button was ${ourAnswer ? `answered (${show(ourAnswer.text)})` : 'not answered'}; OpenClaw's log ${gatewayLog.includes(`updateId=${ourUpdate} `) ? 'names' : 'does not name'} its update`,
  );

  // OpenClaw's gateway restarts (an update, a config change): what is written meanwhile waits
  // in the front's queue; the owner is told once that it waits and once that it is fetched
  // again; each message reaches the model once, in order. Each answer names the words it
  // answers, since OpenClaw may take two waiting messages as one turn.
  const WORDS = ['ALPHA', 'BRAVO', 'CHARLIE'];
  llama.respond = (body) => ({
    chunks: [
      `FRONT-AWAY answers ${WORDS.filter((w) => newTurnTexts(body).some((t) => t.includes(w))).join(' ')}`,
    ],
  });
  const beforeAway = bot().length;
  before = chatRequests().length;
  killGroup(gateway.child, 'SIGTERM');
  const killer = setTimeout(() => killGroup(gateway.child), 20_000);
  await gateway.exited;
  clearTimeout(killer);
  user.says('written while OpenClaw was away: ALPHA');
  user.says('written while OpenClaw was away: BRAVO');
  const away = () => bot().slice(beforeAway);
  await tg
    .waitFor(() => away().find((m) => m.text.includes('not fetching')), { timeoutMs: WAIT_MS })
    .catch(() => undefined);
  gateway = startGateway();
  await until(
    'the answers to what was written while OpenClaw was away',
    () => away().some((m) => m.text.includes('FRONT-AWAY') && m.text.includes('BRAVO')),
    FIRST_WAIT_MS,
  );
  // OpenClaw takes a chat's messages in order: once this one is answered, nothing before it is pending.
  user.says('after the restart: CHARLIE');
  await until('the answer after the restart', () => away().some((m) => m.text.includes('CHARLIE')));
  const turns = chatRequests()
    .slice(before)
    .map((r) => WORDS.filter((w) => newTurnTexts(r.body).some((t) => t.includes(w))));
  const eachOnce = WORDS.every((w) => turns.filter((t) => t.includes(w)).length === 1);
  const inOrder = turns.flat().join(' ') === WORDS.join(' ');
  const stallNotices = away().filter((m) => m.text.includes('not fetching')).length;
  const resumeNotices = away().filter((m) => m.text.includes('fetching messages again')).length;
  check(
    'restart',
    'what waited is answered once, in order',
    eachOnce && inOrder,
    `the model's turns asked ${show(turns)}; the chat got ${show(away().map((m) => m.text.slice(0, 50)))}`,
  );
  check(
    'restart',
    'the owner is told once that messages wait, and once that they are fetched again',
    stallNotices === 1 && resumeNotices === 1,
    `${stallNotices} "not fetching" notice(s), ${resumeNotices} "fetching again" notice(s)`,
  );
  llama.respond = undefined;

  check(
    'upstream',
    'one poller at Telegram',
    tg.polling.maxConcurrent === 1 && tg.polling.conflicts === 0,
    `getUpdates: ${tg.polling.calls} call(s), at most ${tg.polling.maxConcurrent} at once, ${tg.polling.conflicts} conflict(s)`,
  );
  const secret = tg.token.split(':')[1] ?? tg.token;
  const leaked = svc.logs.filter((l) => l.includes(secret));
  check(
    'upstream',
    "the bot token is in none of brainstem's log lines",
    leaked.length === 0,
    `${svc.logs.length} log lines, ${leaked.length} with the token${leaked[0] ? `: ${leaked[0].slice(0, 160)}` : ''}`,
  );
}

type Message = { role: string; content?: unknown };

/**
 * A message's text (the string, or its text parts), leaving out OpenClaw's internal
 * context: data it appends to a turn, the chat's recent messages among it, which are
 * not what the user asked in that turn.
 */
function textOf(m: Message): string[] {
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

const messagesOf = (body: unknown) => (body as { messages?: Message[] } | undefined)?.messages ?? [];

/** The texts of a model request's user messages. */
function userTexts(r: FakeRequest): string[] {
  return messagesOf(r.body)
    .filter((m) => m.role === 'user')
    .flatMap(textOf);
}

/** The texts of the user messages after the last assistant message: what this turn asks. */
function newTurnTexts(body: unknown): string[] {
  const messages = messagesOf(body);
  const last = messages.map((m) => m.role).lastIndexOf('assistant');
  return messages
    .slice(last + 1)
    .filter((m) => m.role === 'user')
    .flatMap(textOf);
}

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
    throw new Error(`OpenClaw's gateway exited (${result.code}) before ${what}: ${tail(log())}`);
  }
  if (result === undefined) {
    process.stdout.write(`(no ${what} within ${ms / 1000} s; the gateway's log ends: ${tail(log())})\n`);
  }
  return result?.value;
}

const tail = (log: string) =>
  stripVTControlCharacters(log).trim().split('\n').slice(-8).join(' | ').slice(-1500);
