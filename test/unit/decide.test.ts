import { describe, expect, it } from 'vitest';
import { decide, isWildcard, type SotwRequest } from '../../src/xds/decide.js';

const request = (r: Partial<SotwRequest>): SotwRequest => ({ versionInfo: '', responseNonce: '', ...r });

describe('decide: what a state-of-the-world request means', () => {
  const table: [string, SotwRequest, { lastNonce?: string }, string][] = [
    ['first request of a stream', request({}), {}, 'subscribe'],
    [
      'first request after a reconnect, with the version the client has',
      request({ versionInfo: 'v1' }),
      {},
      'subscribe',
    ],
    [
      'empty nonce after responses were sent (client restarted the type)',
      request({}),
      { lastNonce: 'n2' },
      'subscribe',
    ],
    ['ACK of the latest response', request({ versionInfo: 'v1', responseNonce: 'n1' }), { lastNonce: 'n1' }, 'ack'],
    [
      'NACK of the latest response',
      request({ versionInfo: 'v0', responseNonce: 'n1', errorMessage: 'bad' }),
      { lastNonce: 'n1' },
      'nack',
    ],
    ['ACK of an older response', request({ versionInfo: 'v1', responseNonce: 'n1' }), { lastNonce: 'n2' }, 'stale'],
    ['NACK of an older response', request({ responseNonce: 'n1', errorMessage: 'bad' }), { lastNonce: 'n2' }, 'stale'],
    ['a nonce this stream never sent', request({ responseNonce: 'forged' }), {}, 'stale'],
  ];
  for (const [name, req, sent, expected] of table) {
    it(name, () => expect(decide(req, sent).kind).toBe(expected));
  }

  it('keeps the NACK message', () => {
    expect(decide(request({ responseNonce: 'n', errorMessage: 'listener x: bad filter' }), { lastNonce: 'n' })).toEqual(
      { kind: 'nack', message: 'listener x: bad filter' },
    );
  });

  it('treats an empty list and * as wildcard', () => {
    expect(isWildcard([])).toBe(true);
    expect(isWildcard(['*'])).toBe(true);
    expect(isWildcard(['a'])).toBe(false);
  });
});
