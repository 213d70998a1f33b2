/**
 * Groups through the front: OpenClaw's requireMention in a group, and a forum topic.
 */
import { type ChatBody, show } from '../shared.js';
import {
  FIRST_WAIT_MS,
  FORUM,
  type Gateway,
  GROUP,
  newTurnTexts,
  TOPIC,
  USER,
  userTexts,
} from './context.js';

export async function groups(g: Gateway): Promise<void> {
  const { tg, llama, check, until, answer } = g;
  const { chatRequests } = llama;
  // A group: a message that mentions the bot is OpenClaw's to answer; one that does not still
  // reaches it (OpenClaw keeps it as the group's context) but gets no answer; brainstem's
  // command, addressed to the bot, is brainstem's alone.
  const member = tg.user(USER, { chatId: GROUP });
  const inGroup = () => tg.botMessages(GROUP);
  const named = (body: ChatBody, words: string[]) =>
    words.filter((w) => newTurnTexts(body).some((t) => t.includes(w)));
  llama.respond = (body) => ({ chunks: [`FRONT-GROUP answers ${named(body, ['DELTA', 'ECHO']).join(' ')}`] });
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
}
