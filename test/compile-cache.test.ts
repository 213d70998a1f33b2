import module from 'node:module';
import { describe, expect, it } from 'vitest';
import { enableCompileCache } from '../src/compile-cache.js';

describe('compile cache', () => {
  // Node 22.1 and later (CI's Node 24 run); Node 20 has no cache to turn off.
  it.skipIf(!('enableCompileCache' in module))(
    'is said to be off when NODE_DISABLE_COMPILE_CACHE turns it off, not "on" in no folder',
    () => {
      process.env.NODE_DISABLE_COMPILE_CACHE = '1';
      try {
        expect(enableCompileCache()).toEqual({
          on: false,
          why: expect.stringContaining('NODE_DISABLE_COMPILE_CACHE'),
        });
      } finally {
        delete process.env.NODE_DISABLE_COMPILE_CACHE;
      }
    },
  );
});
