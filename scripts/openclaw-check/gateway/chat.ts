/**
 * The private chat's first turns through the front: a text, a streamed answer, a 429 from
 * Telegram, a photo.
 */
import { randomPng } from '../../../test/helpers/images.js';
import { show } from '../shared.js';
import { FIRST_WAIT_MS, type Gateway } from './context.js';

export async function firstTurns(g: Gateway): Promise<void> {
  const { tg, llama, check, user, bot, until, answer } = g;
  const { chatRequests } = llama;
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
}
