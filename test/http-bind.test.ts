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

  // Node 24.19+ binds an IP address itself before listen (handlers/http/bound-socket.ts), as every
  // other test does on the default 127.0.0.1; a name still goes through Node's own lookup.
  it('on a name (localhost) answers on loopback', async () => {
    const { svc } = await startOn('localhost');
    try {
      const port = new URL(svc.url).port;
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      expect(res.status).toBe(200);
    } finally {
      await svc.close();
    }
  });
});
