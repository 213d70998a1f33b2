import { describe, expect, it } from 'vitest';
import { formatTokens, namedModes, parseSince } from '../src/usage-summary.js';

describe('the periods /usage and the usage tool read', () => {
  const now = Date.parse('2026-12-06T12:00:00Z');

  it('reads m as minutes, as --since 30m does elsewhere, and h, d, w as hours, days, weeks', () => {
    // `30m` was 30 months of 30 days: 900 days for someone asking about the last half hour.
    expect(parseSince('30m', now)).toBe(now - 30 * 60_000);
    expect(parseSince('2h', now)).toBe(now - 2 * 3_600_000);
    expect(parseSince('7d', now)).toBe(now - 7 * 86_400_000);
    expect(parseSince('2 w', now)).toBe(now - 14 * 86_400_000);
    expect(parseSince('month', now)).toBe(Date.parse('2026-12-01T00:00:00Z'));
  });

  it('reads the French units (jours, semaines) and words, and no unit it does not know', () => {
    expect(parseSince('7j', now)).toBe(now - 7 * 86_400_000);
    expect(parseSince('2 sem', now)).toBe(now - 14 * 86_400_000);
    expect(parseSince('3 jours', now)).toBe(now - 3 * 86_400_000);
    expect(parseSince('aujourd’hui', now)).toBe(Date.parse('2026-12-06T00:00:00Z'));
    expect(parseSince('mois', now)).toBe(Date.parse('2026-12-01T00:00:00Z'));
    // An object's own property names are no units.
    expect(parseSince('7constructor', now)).toBeUndefined();
    expect(parseSince('7y', now)).toBeUndefined();
  });

  it('reads a unix time in seconds (`date +%s`) as seconds, and one in ms as ms', () => {
    // As ms, 10 digits were January 1970: the period was all time, without a word.
    expect(parseSince('1796515200', now)).toBe(Date.parse('2026-12-06T00:00:00Z'));
    expect(parseSince('1796515200000', now)).toBe(Date.parse('2026-12-06T00:00:00Z'));
  });
});

describe('token counts as /usage shows them', () => {
  it('says a count that rounds to 1000k in millions', () => {
    expect(formatTokens(999)).toBe('999');
    expect(formatTokens(1234)).toBe('1.2k');
    expect(formatTokens(999_499)).toBe('999k');
    expect(formatTokens(999_500)).toBe('1.00M');
    expect(formatTokens(2_345_678)).toBe('2.35M');
  });
});

describe('the modes /usage and the chart name', () => {
  it('names up to eight, else the seven costliest and sums the others, never one alone', () => {
    const modes = (n: number) => Array.from({ length: n }, (_, i) => `m${i}`);
    expect(namedModes(modes(8))).toEqual({ named: modes(8), others: [] });
    expect(namedModes(modes(9))).toEqual({ named: modes(7), others: ['m7', 'm8'] });
  });
});
