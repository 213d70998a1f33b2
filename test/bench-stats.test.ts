import { describe, expect, it } from 'vitest';
import { median } from '../bench/stats.js';

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
