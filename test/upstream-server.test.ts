/** Which server a llama mode's base URL points at, for a switch's "same server?" (src/upstream-server.ts). */
import { describe, expect, it } from 'vitest';
import { ollamaModelKey, serverKey } from '../src/upstream-server.js';

const same = (a: string, b: string) => serverKey(a) === serverKey(b);

describe('the server of a base URL', () => {
  it('is one server however its URL is written: a trailing slash, /v1, the default port, case, a loopback name', () => {
    const ollama = 'http://127.0.0.1:11434/v1';
    for (const written of [
      'http://127.0.0.1:11434',
      'http://127.0.0.1:11434/',
      'http://127.0.0.1:11434/v1/',
      'http://localhost:11434/v1',
      'http://LocalHost:11434',
      'http://[::1]:11434/v1',
      'http://0.0.0.0:11434/v1',
      'HTTP://127.0.0.1:11434/v1',
      'http://user:secret@127.0.0.1:11434/v1',
      // DNS's fully qualified name, IPv4 loopback mapped into IPv6, doubled slashes.
      'http://localhost.:11434',
      'http://[::ffff:127.0.0.1]:11434/v1',
      'http://127.0.0.1:11434//v1//',
    ])
      expect(same(written, ollama), written).toBe(true);
    expect(same('http://gpu.lan/v1', 'http://GPU.lan:80/')).toBe(true);
    expect(same('http://gpu.lan./v1', 'http://gpu.lan')).toBe(true);
    expect(same('http://[::ffff:192.168.1.5]:8080', 'http://192.168.1.5:8080/v1')).toBe(true);
    expect(same('http://proxy.lan//ollama-a//v1', 'http://proxy.lan/ollama-a/v1')).toBe(true);
    expect(same('https://gpu.lan/v1', 'https://gpu.lan:443')).toBe(true);
  });

  it('keeps two servers apart: another port, host, scheme, loopback address or path behind one proxy', () => {
    const ollama = 'http://127.0.0.1:11434/v1';
    for (const other of [
      'http://127.0.0.1:8081/v1',
      'http://127.0.0.2:11434/v1',
      'https://127.0.0.1:11434/v1',
      'http://gpu.lan:11434/v1',
      'http://127.0.0.1/v1',
      'http://127.0.0.1:11434/other/v1',
      'http://[::ffff:127.0.0.2]:11434/v1',
    ])
      expect(same(other, ollama), other).toBe(false);
    expect(same('http://proxy.lan/ollama-a/v1', 'http://proxy.lan/ollama-b/v1')).toBe(false);
    expect(same('http://gpu.lan/v1', 'https://gpu.lan/v1')).toBe(false);
  });
});

describe('the key of an Ollama model', () => {
  const one = (a: string, b: string) => ollamaModelKey(a) === ollamaModelKey(b);
  it('is one model however a mode names it: no tag for :latest, case, the default registry and namespace', () => {
    expect(one('qwen2.5', 'qwen2.5:latest')).toBe(true);
    expect(one('Qwen2.5:7B', 'qwen2.5:7b')).toBe(true);
    expect(one('library/qwen2.5', 'qwen2.5:latest')).toBe(true);
    expect(one('registry.ollama.ai/library/qwen2.5:7b', 'qwen2.5:7b')).toBe(true);
    expect(one('hf.co/bartowski/Llama-3.2-1B-GGUF', 'hf.co/bartowski/llama-3.2-1b-gguf:latest')).toBe(true);
  });

  it('keeps two models apart: another tag, namespace or registry, and a port that is no tag', () => {
    expect(one('qwen2.5:7b', 'qwen2.5')).toBe(false);
    expect(one('someone/qwen2.5', 'qwen2.5')).toBe(false);
    expect(one('host:5000/library/qwen2.5', 'qwen2.5')).toBe(false);
    expect(ollamaModelKey('host:5000/library/qwen2.5')).toBe('host:5000/library/qwen2.5:latest');
  });
});
