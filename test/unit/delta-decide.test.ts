import { describe, expect, it } from 'vitest';
import { applySubscription, decideDelta, deltaChanges, newSubscription, type DeltaRequest, type DeltaSubscription } from '../../src/xds/delta-decide.js';

const req = (r: Partial<DeltaRequest>): DeltaRequest => ({ responseNonce: '', subscribe: [], unsubscribe: [], initialVersions: {}, ...r });

function sub(s: Partial<DeltaSubscription>): DeltaSubscription {
  return { ...newSubscription(), started: true, ...s };
}

describe('decideDelta: what a delta request means', () => {
  const table: [string, DeltaRequest, { started: boolean; lastNonce?: string }, string][] = [
    ['first request of a type on the stream', req({}), { started: false }, 'subscribe'],
    ['first request after a reconnect, with initial versions', req({ initialVersions: { a: 'v1' } }), { started: false }, 'subscribe'],
    ['a spontaneous subscription change (no nonce)', req({ subscribe: ['b'] }), { started: true, lastNonce: 'n1' }, 'update'],
    ['ACK of the latest response', req({ responseNonce: 'n1' }), { started: true, lastNonce: 'n1' }, 'ack'],
    ['NACK of the latest response', req({ responseNonce: 'n1', errorMessage: 'bad' }), { started: true, lastNonce: 'n1' }, 'nack'],
    ['ACK of an older response', req({ responseNonce: 'n1' }), { started: true, lastNonce: 'n2' }, 'stale'],
    ['a nonce this stream never sent', req({ responseNonce: 'forged' }), { started: true }, 'stale'],
  ];
  for (const [name, r, state, expected] of table) it(name, () => expect(decideDelta(r, state).kind).toBe(expected));
});

describe('applySubscription', () => {
  it('an empty first request is a wildcard for LDS/CDS, not for EDS/RDS', () => {
    const lds = newSubscription();
    applySubscription(lds, req({}), true);
    expect(lds.wildcard).toBe(true);
    const eds = newSubscription();
    applySubscription(eds, req({}), false);
    expect(eds.wildcard).toBe(false);
  });
  it('"*" subscribes to everything, and unsubscribing "*" ends it', () => {
    const s = newSubscription();
    applySubscription(s, req({ subscribe: ['*', 'a'] }), true);
    expect([s.wildcard, [...s.names]]).toEqual([true, ['a']]);
    applySubscription(s, req({ unsubscribe: ['*'] }), true);
    expect(s.wildcard).toBe(false);
  });
  it('initial_resource_versions become what the client is known to hold', () => {
    const s = newSubscription();
    applySubscription(s, req({ subscribe: ['a'], initialVersions: { a: 'v1' } }), false);
    expect(s.known.get('a')).toBe('v1');
  });
  it('a re-subscribed name is forgotten so it is sent again; an unsubscribed one is dropped', () => {
    const s = sub({ names: new Set(['a', 'b']), known: new Map([['a', 'v1'], ['b', 'v1']]) });
    applySubscription(s, req({ subscribe: ['a'], unsubscribe: ['b', 'never-had'] }), false);
    expect([...s.names]).toEqual(['a']);
    expect([...s.known]).toEqual([]);
  });
});

describe('deltaChanges: what a response carries', () => {
  const versions = new Map([['a', 'v2'], ['b', 'v1']]);
  const table: [string, Partial<DeltaSubscription>, { send: string[]; removed: string[] }][] = [
    ['wildcard, client has nothing: everything', { wildcard: true }, { send: ['a', 'b'], removed: [] }],
    ['wildcard, client is current: nothing (reconnect resends nothing)', { wildcard: true, known: new Map([['a', 'v2'], ['b', 'v1']]) }, { send: [], removed: [] }],
    ['wildcard, one changed: only it', { wildcard: true, known: new Map([['a', 'v1'], ['b', 'v1']]) }, { send: ['a'], removed: [] }],
    ['wildcard, client holds one that is gone: removed', { wildcard: true, known: new Map([['a', 'v2'], ['b', 'v1'], ['c', 'v1']]) }, { send: [], removed: ['c'] }],
    ['names: only the subscribed ones', { names: new Set(['b']) }, { send: ['b'], removed: [] }],
    ['names: a subscribed name that does not exist is reported removed', { names: new Set(['b', 'zz']) }, { send: ['b'], removed: ['zz'] }],
    ['names: a missing name already reported is not reported again', { names: new Set(['zz']), known: new Map([['zz', null]]) }, { send: [], removed: [] }],
    ['names: a subscribed resource that disappeared is removed', { names: new Set(['c']), known: new Map([['c', 'v1']]) }, { send: [], removed: ['c'] }],
  ];
  for (const [name, state, expected] of table) it(name, () => expect(deltaChanges(sub(state), versions)).toEqual(expected));

  it('a missing name that appears later is sent', () => {
    const s = sub({ names: new Set(['zz']) });
    expect(deltaChanges(s, versions).removed).toEqual(['zz']);
    expect(deltaChanges(s, new Map([...versions, ['zz', 'v1']])).send).toEqual(['zz']);
  });

  it('with candidates, looks only at those names', () => {
    const s = sub({ wildcard: true });
    expect(deltaChanges(s, versions, ['b'])).toEqual({ send: ['b'], removed: [] });
  });
});
