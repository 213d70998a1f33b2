/** The front's configuration: defaults, a wrong field named, and the removed gateway relay refused clearly. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

let dir: string;
const env = () => ({ BRAINSTEM_CONFIG: path.join(dir, 'brainstem.json'), HOME: dir });

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'bst-front-config-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('telegram.front', () => {
  it('is off by default, under /telegram, with a one-minute stall notice', () => {
    expect(loadConfig(env(), dir).telegram.front).toEqual({
      enabled: false,
      prefix: '/telegram',
      stallNoticeMs: 60_000,
    });
  });

  it('names a wrong field', () => {
    writeFileSync(env().BRAINSTEM_CONFIG, JSON.stringify({ telegram: { front: { prefix: 'telegram/x' } } }));
    expect(() => loadConfig(env(), dir)).toThrow(/telegram\.front\.prefix: one path segment/);
  });

  it("refuses a prefix that is one of brainstem's own paths, saying which", () => {
    writeFileSync(env().BRAINSTEM_CONFIG, JSON.stringify({ telegram: { front: { prefix: '/mcp' } } }));
    expect(() => loadConfig(env(), dir)).toThrow(/telegram\.front\.prefix: is one of brainstem's own paths/);
  });

  it('refuses the removed gateway relay with what to do instead', () => {
    let error: unknown;
    try {
      loadConfig({ ...env(), OPENCLAW_GATEWAY_URL: 'http://127.0.0.1:18789' }, dir);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      expect.stringMatching(/^OPENCLAW_GATEWAY_URL: the gateway relay is gone; .*telegram\.front\.enabled/),
    ]);
    writeFileSync(env().BRAINSTEM_CONFIG, JSON.stringify({ openclaw: { gatewayUrl: 'http://127.0.0.1:1' } }));
    expect(() => loadConfig(env(), dir)).toThrow(
      /openclaw: the gateway relay is gone; .*telegram\.front\.enabled/,
    );
  });
});
