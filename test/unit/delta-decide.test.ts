import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  KnownVersions,
  applySubscription,
  decideDelta,
  deltaChanges,
  newSubscription,
  settleKnown,
  type DeltaRequest,
  type DeltaSubscription,
} from '../../src/xds/delta-decide.js';

const req = (r: Partial<DeltaRequest>): DeltaRequest => ({
  responseNonce: '',
  subscribe: [],
  unsubscribe: [],
  initialVersions: {},
  ...r,
});

function sub(s: Partial<DeltaSubscription>): DeltaSubscription {
  return { ...newSubscription(), started: true, ...s };
}

describe('decideDelta: what a delta request means', () => {
  const table: [string, DeltaRequest, { started: boolean; lastNonce?: string }, string][] = [
    ['first request of a type on the stream', req({}), { started: false }, 'subscribe'],
    [
      'first request after a reconnect, with initial versions',
      req({ initialVersions: { a: 'v1' } }),
      { started: false },
      'subscribe',
    ],
    [
      'a spontaneous subscription change (no nonce)',
      req({ subscribe: ['b'] }),
      { started: true, lastNonce: 'n1' },
      'update',
    ],
    ['ACK of the latest response', req({ responseNonce: 'n1' }), { started: true, lastNonce: 'n1' }, 'ack'],
    [
      'NACK of the latest response',
      req({ responseNonce: 'n1', errorMessage: 'bad' }),
      { started: true, lastNonce: 'n1' },
      'nack',
    ],
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
    const s = sub({
      names: new Set(['a', 'b']),
      known: new Map([
        ['a', 'v1'],
        ['b', 'v1'],
      ]),
    });
    expect(applySubscription(s, req({ subscribe: ['a'], unsubscribe: ['b', 'never-had'] }), false)).toBe(false);
    expect([...s.names]).toEqual(['a']);
    expect([...s.known.keys()]).toEqual([]);
    // Only the names the request touched are looked at next, not every name.
    expect([...s.recheck].sort()).toEqual(['a', 'b', 'never-had']);
  });
  it('the first request and a wildcard that comes or goes need a look at every name', () => {
    const s = newSubscription();
    expect(applySubscription(s, req({ subscribe: ['a'] }), true)).toBe(true);
    expect(applySubscription(s, req({ subscribe: ['*'] }), true)).toBe(true);
    expect(applySubscription(s, req({ subscribe: ['*'] }), true)).toBe(false);
    expect(applySubscription(s, req({ unsubscribe: ['*'] }), true)).toBe(true);
  });
});

describe('deltaChanges: what a response carries', () => {
  const versions = new Map([
    ['a', 'v2'],
    ['b', 'v1'],
  ]);
  const table: [string, Partial<DeltaSubscription>, { send: string[]; removed: string[] }][] = [
    ['wildcard, client has nothing: everything', { wildcard: true }, { send: ['a', 'b'], removed: [] }],
    [
      'wildcard, client is current: nothing (reconnect resends nothing)',
      {
        wildcard: true,
        known: new Map([
          ['a', 'v2'],
          ['b', 'v1'],
        ]),
      },
      { send: [], removed: [] },
    ],
    [
      'wildcard, one changed: only it',
      {
        wildcard: true,
        known: new Map([
          ['a', 'v1'],
          ['b', 'v1'],
        ]),
      },
      { send: ['a'], removed: [] },
    ],
    [
      'wildcard, client holds one that is gone: removed',
      {
        wildcard: true,
        known: new Map([
          ['a', 'v2'],
          ['b', 'v1'],
          ['c', 'v1'],
        ]),
      },
      { send: [], removed: ['c'] },
    ],
    ['names: only the subscribed ones', { names: new Set(['b']) }, { send: ['b'], removed: [] }],
    [
      'names: a subscribed name that does not exist is reported removed',
      { names: new Set(['b', 'zz']) },
      { send: ['b'], removed: ['zz'] },
    ],
    [
      'names: a missing name already reported is not reported again',
      { names: new Set(['zz']), known: new Map([['zz', null]]) },
      { send: [], removed: [] },
    ],
    [
      'names: a subscribed resource that disappeared is removed',
      { names: new Set(['c']), known: new Map([['c', 'v1']]) },
      { send: [], removed: ['c'] },
    ],
  ];
  for (const [name, state, expected] of table)
    it(name, () => expect(deltaChanges(sub(state), versions)).toEqual(expected));

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

describe('KnownVersions: what a delta client holds, as the view versions plus differences', () => {
  const view = new Map([
    ['a', 'v1'],
    ['b', 'v1'],
    ['c', 'v1'],
  ]);
  it('after a full look over a wildcard subscription it is the view itself, plus names reported missing', () => {
    const s = sub({ wildcard: true, names: new Set(['zz']), known: new KnownVersions() });
    const known = s.known as KnownVersions;
    const first = deltaChanges(s, view);
    settleKnown(s, view, undefined);
    expect(first).toEqual({ send: ['a', 'b', 'c'], removed: ['zz'] });
    expect([known.based, known.differences]).toEqual([true, 1]);
    expect([...s.known.keys()].sort()).toEqual(['a', 'b', 'c', 'zz']);
    expect(s.known.get('zz')).toBeNull();
    // A changed resource, looked at alone: only it is sent, and the client is then known to hold it.
    const next = new Map([...view, ['b', 'v2']]);
    expect(deltaChanges(s, next, ['b'])).toEqual({ send: ['b'], removed: [] });
    settleKnown(s, next, ['b']);
    expect([known.based, known.differences]).toEqual([true, 1]);
    expect(s.known.get('b')).toBe('v2');
    expect(s.known.get('a')).toBe('v1');
    expect(s.known.get('zz')).toBeNull();
  });
  it('a name the client does not want yet stays a difference until it subscribes; then none is left', () => {
    const s = sub({ names: new Set(['a', 'b', 'c']), known: new KnownVersions() });
    const known = s.known as KnownVersions;
    deltaChanges(s, view);
    settleKnown(s, view, undefined);
    expect(known.differences).toBe(0);
    // A new resource appears; the client has not asked for it.
    const next = new Map([...view, ['d', 'v1']]);
    expect(deltaChanges(s, next, ['d'])).toEqual({ send: [], removed: [] });
    settleKnown(s, next, ['d']);
    expect([s.known.has('d'), known.differences]).toEqual([false, 1]);
    // It subscribes: a look at just that name sends it, and the client holds the view exactly again.
    applySubscription(s, req({ subscribe: ['d'] }), false);
    expect(deltaChanges(s, next, s.recheck)).toEqual({ send: ['d'], removed: [] });
    settleKnown(s, next, ['d']);
    expect([s.known.get('d'), known.differences]).toEqual(['v1', 0]);
  });
  it('forgets and drops names over the shared base without touching it', () => {
    const k = new KnownVersions();
    for (const [name, version] of view) k.set(name, version);
    k.rebase(view);
    expect([k.based, k.differences]).toEqual([true, 0]);
    expect(k.delete('a')).toBe(true);
    expect(k.has('a')).toBe(false);
    expect(view.get('a')).toBe('v1');
    k.set('d', null);
    k.set('b', 'v1');
    expect([...k.keys()].sort()).toEqual(['b', 'c', 'd']);
    k.set('a', 'v1');
    expect(k.get('a')).toBe('v1');
  });
  it('a client that holds a name it no longer wants (names only) is told nothing about it again', () => {
    const s = sub({ names: new Set(['a']), known: new KnownVersions() });
    expect(deltaChanges(s, view)).toEqual({ send: ['a'], removed: [] });
    settleKnown(s, view, undefined);
    // Most view names are not wanted: an explicit map, so b and c are not thought to be held.
    expect(s.known.has('b')).toBe(false);
    expect([(s.known as KnownVersions).based, (s.known as KnownVersions).differences]).toEqual([false, 1]);
  });
});

describe('deltaChanges: a first look (the client holds nothing) takes a short path', () => {
  it('sends, reports missing and records exactly what the per-name path does', () => {
    const name = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f');
    fc.assert(
      fc.property(
        fc.dictionary(name, fc.constantFrom('1', '2')),
        fc.uniqueArray(name),
        fc.boolean(),
        (record, subscribed, wildcard) => {
          const versions = new Map(Object.entries(record));
          const fresh = (known: DeltaSubscription['known']): DeltaSubscription => ({
            ...newSubscription(),
            started: true,
            wildcard,
            names: new Set(subscribed),
            known,
          });
          // A plain Map takes the per-name path.
          const slow = fresh(new Map());
          const fast = fresh(new KnownVersions());
          expect(deltaChanges(fast, versions)).toEqual(deltaChanges(slow, versions));
          settleKnown(fast, versions, undefined);
          const held = (s: DeltaSubscription) => new Map([...s.known.keys()].map((n) => [n, s.known.get(n)]));
          expect(held(fast)).toEqual(held(slow));
          // And the next look, after a change of every version, agrees too.
          const next = new Map([...versions].map(([n, v]) => [n, v === '1' ? '2' : '1']));
          expect(deltaChanges(fast, next, next.keys())).toEqual(deltaChanges(slow, next, next.keys()));
        },
      ),
      { numRuns: 500, seed: 20261129 },
    );
  });
});
