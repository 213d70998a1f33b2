import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startFakeTelegram } from './fakes/telegram.js';
import { recordingLogger } from './helpers/logs.js';
import { startTestService } from './helpers/service.js';

/** The README's "empty → nobody": the bot on with nobody allowed is a warning that says what to set. */
describe('the Telegram bot with an empty allow-list', () => {
  it('warns at start, naming the variable and the config field to set and where to find an id', async () => {
    const tg = await startFakeTelegram();
    onTestFinished(() => tg.close());
    const { logger, logs } = recordingLogger('info');
    const svc = await startTestService({
      config: { telegram: { token: tg.token, apiRoot: tg.apiRoot } },
      logger,
    });
    onTestFinished(() => svc.close());
    const warned = logs
      .filter((l) => l.level === 40)
      .map((l) => String(l.msg))
      .find((m) => m.startsWith('Telegram bot: on'));
    // It named the variable only: an owner who sets brainstem.json was not told its field, nor
    // how to learn the id to put there.
    expect(warned).toContain('TELEGRAM_ALLOWED_USERS');
    expect(warned).toContain('"telegram": { "allowedUsers": [<id>] }');
    expect(warned).toContain(path.join(svc.dir, 'brainstem.json'));
    expect(warned).toContain('write to the bot and it tells you your id');
  });
});
