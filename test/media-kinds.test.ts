import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomPng } from './helpers/images.js';
import { type Harness, startHarness } from './telegram-harness.js';

/**
 * Kinds of message brainstem does not take, on the direct route: each gets a
 * reply saying so (the Bot API emulator as Telegram), none reaches the brain.
 */

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const reply = (chatId: number, pattern: RegExp) =>
  h.tg.waitFor(() => h.tg.botMessages(chatId).find((m) => pattern.test(m.text)));

describe('a kind of message brainstem does not take', () => {
  it.each([
    [112, { story: { chat: { id: -1001, type: 'channel', title: 'News' }, id: 7 } }, 'Forwarded stories'],
    [113, { paid_media: { star_count: 5, paid_media: [{ type: 'preview' }] } }, 'Paid media'],
    [114, { game: { title: 'Chess', description: 'A game', photo: [] } }, 'Games'],
  ])('is answered, never met with silence (chat %i)', async (chatId, fields, name) => {
    h.tg.user(chatId).sends(fields);
    const told = await reply(chatId, /not supported/);
    expect(told.text).toBe(`⚙️ [proxy] ${name} are not supported: please send text, a photo or a document.`);
  });

  it('is answered in French with the participle agreeing with the kind: "prises" for les vidéos, "pris" for les sondages', async () => {
    const user = h.tg.user(116, { languageCode: 'fr' });
    user.sends({ video: { file_id: 'v1', file_unique_id: 'uv1', width: 1, height: 1, duration: 1 } });
    const video = await reply(116, /Les vidéos/);
    expect(video.text).toBe(
      '⚙️ [proxy] Les vidéos ne sont pas prises en charge : envoyez du texte, une photo ou un document.',
    );
    user.sends({ location: { latitude: 48.85, longitude: 2.35 } });
    await reply(116, /^⚙️ \[proxy\] Les positions ne sont pas prises en charge :/);
    user.sends({ poll: { id: 'p1', question: 'Oui ?', options: [] } });
    await reply(116, /^⚙️ \[proxy\] Les sondages ne sont pas pris en charge :/);
  });

  it('a GIF is one, though Telegram sends it with a `document` too: it is not taken for a file', async () => {
    const chats = () => h.llama.requests.filter((r) => r.path.endsWith('/chat/completions')).length;
    const before = chats();
    // What Telegram sends for a GIF: the `animation`, and the same file as a `document`.
    const file = { file_id: 'gif1', file_unique_id: 'ugif1', file_name: 'giphy.mp4', mime_type: 'video/mp4' };
    h.tg.user(115).sends({
      animation: { ...file, width: 200, height: 200, duration: 2, file_size: 1000 },
      document: { ...file, file_size: 1000 },
      caption: 'lol look at this',
    });
    const told = await reply(115, /not supported/);
    expect(told.text).toBe('⚙️ [proxy] GIFs are not supported: please send text, a photo or a document.');
    expect(h.tg.botMessages(115).map((m) => m.text)).toEqual([told.text]);
    expect(chats()).toBe(before);
  });

  it('a photo to a text-only mode is refused in French to a reader in French', async () => {
    h.tg.user(117, { languageCode: 'fr' }).sendsPhoto(randomPng(4, 4), 'regarde');
    const told = await reply(117, /images/);
    expect(told.text).toMatch(
      /^⚙️ \[proxy\] ⚠️ Le modèle du mode « local » ne prend pas d’images\. Décrivez l’image/,
    );
    expect(told.text).not.toMatch(/takes no images/);
  });
});
