/**
 * A gateway restart: what the user writes meanwhile waits in the front's queue.
 */
import { show } from '../shared.js';
import { FIRST_WAIT_MS, type Gateway, newTurnTexts, WAIT_MS } from './context.js';

export async function restart(g: Gateway): Promise<void> {
  const { tg, llama, check, user, bot, until } = g;
  const { chatRequests } = llama;
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
  // On a loaded machine an earlier step may have left OpenClaw told stalled (a poll later than the
  // short notice delay): its "fetching again" comes first, or it would be counted here, where the
  // stall of this restart, already told, would never be.
  const told = (what: string) => bot().filter((m) => m.text.includes(what)).length;
  await until(
    'the end of a stall an earlier step left',
    () => told('not fetching') === told('fetching messages again'),
  );
  const beforeAway = bot().length;
  const before = chatRequests().length;
  await g.stop();
  user.says('written while OpenClaw was away: ALPHA');
  user.says('written while OpenClaw was away: BRAVO');
  const away = () => bot().slice(beforeAway);
  await tg
    .waitFor(() => away().find((m) => m.text.includes('not fetching')), { timeoutMs: WAIT_MS })
    .catch(() => undefined);
  g.start();
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
}
