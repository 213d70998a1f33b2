import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it, onTestFinished } from 'vitest';
import { childPids, median } from '../bench/stats.js';

// The bench prints medians as its figures: one of no value must not be printed as a measure.
describe('the bench’s median', () => {
  it('is the middle value, or the mean of the two middle ones', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('refuses a list holding a value that is not a number, instead of returning another value', () => {
    // A time read from a record that was not there: `undefined - t` is NaN.
    expect(() => median([5, 1, Number.NaN])).toThrow(/NaN is no measure/);
  });

  it('refuses no values, instead of a NaN written as null', () => {
    expect(() => median([])).toThrow(/nothing was measured/);
  });
});

describe('the bench’s child processes', () => {
  it('names a child that still runs, whose CPU the kernel gives its parent only once it ends', async () => {
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    onTestFinished(async () => {
      child.kill();
      await once(child, 'exit');
    });
    await once(child, 'spawn');
    expect(childPids(process.pid)).toContain(child.pid);
  });
});
