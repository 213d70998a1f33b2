/** Where brainstem's own children reach it, for each kind of bind address. */
import { describe, expect, it } from 'vitest';
import { hostPort, isLoopback, ownUrl } from '../src/bind-address.js';

describe('the bind address', () => {
  it("brainstem's children reach it on loopback when it listens everywhere, else on the address it listens on", () => {
    expect(
      ['127.0.0.1', 'localhost', '::1', '[::1]', '0.0.0.0', '::', '192.0.2.2', 'fd00::2', 'box.lan'].map(
        (h) => ownUrl(h, 8000),
      ),
    ).toEqual([
      'http://127.0.0.1:8000',
      'http://localhost:8000',
      'http://[::1]:8000',
      'http://[::1]:8000',
      'http://127.0.0.1:8000',
      'http://127.0.0.1:8000',
      // A LAN address: nothing listens on 127.0.0.1.
      'http://192.0.2.2:8000',
      'http://[fd00::2]:8000',
      'http://box.lan:8000',
    ]);
  });

  it('is loopback only for addresses no other machine reaches', () => {
    expect(['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost'].every(isLoopback)).toBe(true);
    expect(['0.0.0.0', '::', '192.0.2.2', 'fd00::2', '128.0.0.1', 'localhost.evil'].some(isLoopback)).toBe(
      false,
    );
    expect(hostPort('fd00::2', 1)).toBe('[fd00::2]:1');
  });
});
