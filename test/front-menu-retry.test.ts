/**
 * brainstem's own command menu, set once at start with the front on, when Telegram does not take
 * it: after a network drop, a 5xx or flood control (429, its retry_after honoured) it is sent
 * again after a backoff, with no other change to carry it; a refusal (400) is not retried, as
 * Telegram would refuse the same list again. Each test starts brainstem on a Bot API emulator
 * told beforehand to fail its first setMyCommands calls; the last one fails an OpenClaw change
 * instead, which is put back, not retried.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type FakeTelegram, startFakeTelegram } from './fakes/telegram.js';
import { type Harness, startHarness } from './telegram-harness.js';

const DEFAULT = '{"type":"default"}|';
const FRENCH = '{"type":"default"}|fr';

let started: { h: Harness; tg: FakeTelegram } | undefined;
afterEach(async () => {
  await started?.h.close();
  await started?.tg.close();
  started = undefined;
});

/** brainstem with the front on, started on an emulator that `fail` (if given) has set up to fail. */
async function start(fail?: (tg: FakeTelegram) => void): Promise<Harness> {
  const tg = await startFakeTelegram();
  fail?.(tg);
  const h = await startHarness({ tg, config: { telegram: { front: { enabled: true } } } });
  started = { h, tg };
  return h;
}

const logged = (h: Harness, msg: RegExp) => h.logs.filter((l) => msg.test(String(l.msg)));
const RETRY = /it is sent again in/;
/** Both of brainstem's lists (English by default, French) are at Telegram, merged. */
const menusSet = (h: Harness) =>
  ['default|', 'default|fr'].every((k) => h.tg.menus.get(k)?.some((c) => c.command === 'mode'));

describe('brainstem’s own command menu when Telegram does not take it at start', { timeout: 60_000 }, () => {
  it('after a network drop and a 5xx, reaches Telegram after the first backoff, with no other change', async () => {
    const h = await start((tg) => {
      tg.dropNext('setMyCommands', 1);
      tg.failNext('setMyCommands', 1, { code: 502, description: 'Bad Gateway' });
    });
    await h.tg.waitFor(() => menusSet(h), { timeoutMs: 20_000 });
    expect(logged(h, RETRY)).toEqual([expect.objectContaining({ keys: [DEFAULT, FRENCH], delayMs: 3000 })]);
    expect(h.tg.callsOf('setMyCommands').map((c) => [c.params.language_code ?? '', c.ok])).toEqual([
      ['', false],
      ['fr', false],
      ['', true],
      ['fr', true],
    ]);
    expect(h.tg.menus.get('default|')?.map((c) => c.command)).toEqual(
      expect.arrayContaining(['mode', 'usage', 'bhelp', 'creds']),
    );
    const all = h.logs.map((l) => JSON.stringify(l)).join('\n');
    expect(all).not.toContain(h.tg.token.split(':')[1]);
  });

  it('after flood control, waits the retry_after Telegram asked for when it is longer than the backoff', async () => {
    const h = await start((tg) => tg.rateLimit('setMyCommands', 1, 4));
    await h.tg.waitFor(() => menusSet(h), { timeoutMs: 20_000 });
    expect(logged(h, RETRY)).toEqual([expect.objectContaining({ keys: [DEFAULT], delayMs: 4000 })]);
    const [limited, , again] = h.tg.callsOf('setMyCommands');
    expect([limited?.errorCode, again?.ok]).toEqual([429, true]);
    expect((again?.at ?? 0) - (limited?.at ?? 0)).toBeGreaterThanOrEqual(3_990);
  });

  it('after a 400, is not retried: Telegram would refuse the same list again', async () => {
    const h = await start((tg) =>
      tg.failNext('setMyCommands', 1, { code: 400, description: 'Bad Request: BOT_COMMAND_INVALID' }),
    );
    await h.tg.waitFor(() => logged(h, /Telegram refused the merged command menu/)[0], { timeoutMs: 20_000 });
    // A change of OpenClaw's is queued behind the start's sync: once it is answered, that sync has
    // ended, and a retry it planned would have been logged.
    const res = await fetch(`${h.service.url}/telegram/bot${h.tg.token}/deleteMyCommands`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ scope: { type: 'all_group_chats' } }),
    });
    expect(res.status).toBe(200);
    expect(logged(h, RETRY)).toEqual([]);
  });

  it('does not retry an OpenClaw list whose caller got the error: the list before is put back', async () => {
    const h = await start();
    await h.tg.waitFor(() => menusSet(h), { timeoutMs: 20_000 });
    h.tg.dropNext('setMyCommands', 1);
    const res = await fetch(`${h.service.url}/telegram/bot${h.tg.token}/setMyCommands`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ commands: [{ command: 'ask', description: 'Ask' }] }),
    });
    // The answer comes once the change, its put-back and the retry's planning are done.
    expect(res.status).toBe(502);
    expect(logged(h, RETRY)).toEqual([]);
    for (const key of ['default|', 'default|fr']) {
      expect(h.tg.menus.get(key)?.map((c) => c.command)).not.toContain('ask');
    }
  });
});
