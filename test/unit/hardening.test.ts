// Small pure pieces of the hardening: the NACK retry backoff and the terminal escaping.
import { describe, expect, it } from 'vitest';
import { escapeDeep, escapeText } from '../../src/escape.js';
import { nackRetryDelayMs } from '../../src/xds/base-stream.js';

describe('NACK retry backoff', () => {
  it('doubles from 1 s to a 5 min cap, with ±20% jitter that never passes the cap', () => {
    expect([1, 2, 3, 4, 9].map((n) => nackRetryDelayMs(n, () => 0.5))).toEqual([1000, 2000, 4000, 8000, 256_000]);
    expect(nackRetryDelayMs(1, () => 0)).toBe(800);
    expect(nackRetryDelayMs(1, () => 0.9999)).toBe(1200);
    for (const n of [10, 20, 100, 10_000]) expect(nackRetryDelayMs(n, () => 0.9999)).toBe(300_000);
    expect(nackRetryDelayMs(10, () => 0)).toBe(240_000);
  });
});

describe('escapeText', () => {
  it('makes control characters, bidi overrides and backslashes visible; leaves other text alone', () => {
    expect(escapeText('a\u001b[31mb\nc\r\td\u0007\u007f\u009b')).toBe('a\\x1b[31mb\\nc\\r\\td\\x07\\x7f\\x9b');
    expect(escapeText('\u202eevil\u2066')).toBe('\\u{202e}evil\\u{2066}');
    expect(escapeText('C:\\x1b')).toBe('C:\\\\x1b');
    expect(escapeText('originate/ns/ünïcode-名前:443')).toBe('originate/ns/ünïcode-名前:443');
  });

  it('escapes every string of a log object, keys included, and keeps other values', () => {
    expect(escapeDeep({ node: 'a\nb', n: 3, list: ['\u001b'], nested: { 'k\r': true } })).toEqual({
      node: 'a\\nb',
      n: 3,
      list: ['\\x1b'],
      nested: { 'k\\r': true },
    });
  });
});
