/**
 * Telegram's other kinds of update in the private chat: an album, a reaction, a voice note.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { FakeRequest } from '../../../test/fakes/llama.js';
import { randomPng } from '../../../test/helpers/images.js';
import { show } from '../shared.js';
import { type Gateway, newTurnTexts } from './context.js';

export async function otherUpdates(g: Gateway): Promise<void> {
  const { tg, llama, check, user, bot, until, answer } = g;
  const { chatRequests } = llama;
  // An album: Telegram sends one message per photo; OpenClaw takes them as one turn, each photo
  // fetched through the front.
  const album = [randomPng(40, 30), randomPng(30, 40)];
  let before = chatRequests().length;
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
}
