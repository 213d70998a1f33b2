import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeOpenClaw, startFakeOpenClaw } from './fakes/openclaw.js';
import { type Harness, OWNER, startHarness } from './telegram-harness.js';

let h: Harness;
let gw: FakeOpenClaw;

beforeAll(async () => {
  gw = await startFakeOpenClaw({ token: 'gw-secret-token' });
  h = await startHarness({
    env: { OPENCLAW_GATEWAY_URL: gw.url, OPENCLAW_GATEWAY_TOKEN: 'gw-secret-token' },
    config: { modes: { other: { kind: 'llama', description: 'Another local mode' } } },
  });
});
afterAll(async () => {
  await h.close();
  await gw.close();
});

const reply = (chatId: number, pattern: RegExp, timeoutMs = 5000) =>
  h.tg.waitFor(() => h.tg.botMessages(chatId).find((m) => pattern.test(m.text)), { timeoutMs });

describe('the OpenClaw route', () => {
  it('relays only the new message with the session key and the Bearer token, streaming the answer back', async () => {
    gw.reply({ chunks: ['Hello ', 'from ', 'the **body**.'], delayMs: 30 });
    h.tg.user(112).says('hi OpenClaw');
    const msg = await reply(112, /^Hello from the body\.$/);
    expect(msg.entities.map((e) => e.type)).toEqual(['bold']);
    const req = gw.requests.at(-1);
    expect(req?.headers['x-openclaw-session-key']).toBe('telegram:112');
    expect(req?.headers.authorization).toBe('Bearer gw-secret-token');
    expect(req?.body).toMatchObject({
      model: 'openclaw/default',
      stream: true,
      messages: [{ role: 'user', content: 'hi OpenClaw' }],
    });
    h.tg.user(112).says('second turn');
    await h.tg.waitFor(
      () => h.tg.botMessages(112).filter((m) => m.text === 'Hello from the body.').length === 2,
    );
    expect(gw.requests.at(-1)?.body.messages).toEqual([{ role: 'user', content: 'second turn' }]);
    // Nothing went to the brains: OpenClaw is the one calling them.
    expect(h.llama.requests.filter((r) => r.path === '/v1/chat/completions')).toHaveLength(0);
  });

  it('answers switch requests itself and acts on a [SWITCH:x] marker from the gateway, hiding it', async () => {
    const before = gw.requests.length;
    h.tg.user(OWNER).says('passe en mode other');
    await reply(OWNER, /✅ Mode other is ready/);
    expect(gw.requests.length).toBe(before);
    expect(h.service.core.switcher.active().id).toBe('other');

    gw.reply({ chunks: ['Going back [SWI', 'TCH:local] now.'] });
    h.tg.user(113).says('go back please, body');
    await reply(113, /^Going back {2}now\.$/);
    await h.tg.waitFor(() => h.service.core.switcher.active().id === 'local');
    await reply(OWNER, /Mode local is awake/);
  });

  it('/new gives the chat a fresh OpenClaw session key', async () => {
    gw.reply({ chunks: ['ok'] });
    h.tg.user(114).says('/new');
    await reply(114, /Fresh conversation/);
    h.tg.user(114).says('after new');
    await reply(114, /^ok$/);
    expect(gw.requests.at(-1)?.headers['x-openclaw-session-key']).toBe('telegram:114:1');
  });

  it('shows gateway failures as messages: an error chunk, a cut stream, a refused token', async () => {
    gw.reply({ chunks: ['Partial '], error: 'agent crashed' });
    h.tg.user(115).says('fail please');
    await reply(115, /^Partial\n\n⚙️ \[proxy\] ⚠️ OpenClaw: agent crashed$/);

    gw.reply({ chunks: ['Cut '], truncate: true });
    h.tg.user(115).says('cut please');
    await reply(
      115,
      /^Cut\n\n⚙️ \[proxy\] ⚠️ OpenClaw: the gateway closed the stream before the answer ended\.$/,
    );

    gw.reply({ status: 401 });
    h.tg.user(115).says('refused');
    await reply(115, /OpenClaw refused the gateway token \(HTTP 401\); check OPENCLAW_GATEWAY_TOKEN/);
  });

  it('/status says the route is OpenClaw and that the gateway answers', async () => {
    h.tg.user(116).says('/status');
    const status = await reply(116, /Status/);
    expect(status.text).toContain(`Route: OpenClaw gateway ${gw.url} ✅ answers`);
    expect(gw.modelsRequests).toBeGreaterThan(0);
  });

  it('/stop aborts the gateway request', async () => {
    let open: () => void = () => undefined;
    gw.reply({ chunks: ['Working ', 'done'], gate: new Promise<void>((r) => (open = r)) });
    h.tg.user(117).says('long job');
    const msg = await reply(117, /Working/);
    h.tg.user(117).says('/stop');
    await reply(117, /Stopped the answer in progress/);
    expect(await gw.requests.at(-1)?.ended).toBe('closed');
    await h.tg.waitFor(() => msg.text === 'Working\n\n⏹ stopped');
    open();
  });
});
