import { describe, expect, it } from 'vitest';
import { recordingLogger } from './helpers/logs.js';
import { startTestService } from './helpers/service.js';

/** The README's bind promise: loopback by default, any other address logged as a warning. */
async function startOn(host: string | undefined) {
  const { logger, logs } = recordingLogger('info');
  const svc = await startTestService({ config: host ? { server: { host } } : {}, logger });
  return { svc, logs, warnings: () => logs.filter((l) => l.level === 40).map((l) => String(l.msg)) };
}

describe('the HTTP bind', () => {
  it('is loopback by default, without a warning about it', async () => {
    const { svc, warnings } = await startOn(undefined);
    try {
      expect(new URL(svc.url).hostname).toBe('127.0.0.1');
      expect(warnings().filter((m) => /loopback/.test(m))).toEqual([]);
    } finally {
      await svc.close();
    }
  });

  it('on any other address is logged as a warning naming it', async () => {
    const { svc, warnings } = await startOn('0.0.0.0');
    try {
      expect(new URL(svc.url).hostname).toBe('0.0.0.0');
      expect(warnings()).toContainEqual(expect.stringMatching(/^listening on 0\.0\.0\.0, not loopback/));
    } finally {
      await svc.close();
    }
  });

  // Node 24.19+ binds an IP address before listen (handlers/http/bound-socket.ts); a name goes
  // through Node's lookup as before.
  it.each(['127.0.0.1', 'localhost'])('on %s answers on loopback', async (host) => {
    const { svc } = await startOn(host);
    try {
      const port = new URL(svc.url).port;
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      expect(res.status).toBe(200);
    } finally {
      await svc.close();
    }
  });
});
