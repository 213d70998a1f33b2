/**
 * Commands through the front: brainstem's own (/mode, /usage) never reach OpenClaw;
 * OpenClaw's (/new, /oc_usage as its /usage) reach it.
 */
import { PROXY_TAG } from '../../../src/notices.js';
import { show } from '../shared.js';
import { type Gateway, userTexts } from './context.js';

export async function commands(g: Gateway): Promise<void> {
  const { tg, llama, check, user, bot, until, answer, log } = g;
  const { chatRequests } = llama;
  // brainstem's /mode is answered by brainstem and never reaches OpenClaw: OpenClaw handles a
  // chat's updates in order, so the text after it shows what OpenClaw got.
  const shown = bot().length;
  let before = chatRequests().length;
  user.says('/mode');
  const modeUpdate = Number(tg.updateLog.at(-1)?.update_id);
  await until("brainstem's answer to /mode", () =>
    bot()
      .slice(shown)
      .find((m) => m.replyMarkup !== undefined),
  );
  answer({ chunks: ['FRONT-AFTER ', 'the menu'] });
  const afterMenu = user.says('after the menu');
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
    `after /mode the chat got ${show(since.map((m) => m.text.slice(0, 40)))}; ${askedMode ? 'a model request carries /mode' : 'no model request carries /mode'}; OpenClaw's log ${log().includes(`updateId=${modeUpdate} `) ? 'names' : 'does not name'} its update ${modeUpdate}`,
  );

  // OpenClaw's /new reaches OpenClaw, which starts a new session. Sent once OpenClaw is done with
  // the answer before: that answer shows in the chat when its sendMessage reaches Telegram, before
  // OpenClaw has read Telegram's reply, and until then OpenClaw counts its delivery as unconfirmed
  // (a notice "owed"). A /new arriving in between is first answered "I couldn’t confirm whether
  // my previous reply reached this chat…", with or without the front.
  const settled = await g.processed(afterMenu);
  const beforeNew = bot().length;
  user.says('/new');
  await until("OpenClaw's answer to /new", () =>
    bot()
      .slice(beforeNew)
      .find((m) => /new session/i.test(m.text)),
  );
  const afterNew = bot().slice(beforeNew);
  const unconfirmed = afterNew.some((m) => m.text.includes('confirm whether my previous reply reached'));
  check(
    'new',
    '/new reaches OpenClaw, with no doubt about the reply before',
    afterNew.some((m) => /new session/i.test(m.text)) && !unconfirmed,
    `after /new the chat got ${show(afterNew.map((m) => m.text.slice(0, 80)))}${settled ? '' : "; OpenClaw's log never said it was done with the message before"}`,
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
}
