// deltaHoldsView remembers whether a stream's names covered a type and, names unchanged, updates that
// answer from the names changed since (cache/snapshot.ts changedSince): each case below is a state a
// wrong shortcut would misjudge.
import { describe, expect, it } from 'vitest';
import { encodeResource, type EncodedResource } from '../../src/envoy/encode.js';
import { TypeUrl, type ResourceKind } from '../../src/envoy/protos.js';
import { TypeSnapshot } from '../../src/cache/snapshot.js';
import type { ServedSnapshot } from '../../src/cache/watch.js';
import type { DeltaTypeState } from '../../src/xds/delta.js';
import { deltaHoldsView } from '../../src/xds/synced.js';

const kinds: ResourceKind[] = ['listener', 'route', 'cluster', 'endpoint', 'extension', 'secret'];
const none = new TypeSnapshot(new Map(), 0n, 0);
const endpoints = (names: string[]): Map<string, EncodedResource> =>
  new Map(names.map((n) => [n, encodeResource(TypeUrl.endpoint, n, { cluster_name: n }, { cluster_name: n })]));

/** A view whose only resources are endpoints, and a stream that holds all it was sent. */
class Fixture {
  private ts: TypeSnapshot;
  readonly state = {
    started: true,
    wildcard: false,
    names: new Set<string>(),
    namesVersion: 0,
    namesDropped: 0,
    droppedNames: [] as string[],
    owesAnswer: false,
    lastNonce: 'n',
    ackedNonce: 'n',
    generation: 1,
  } as unknown as DeltaTypeState;
  private generation = 1;

  constructor(names: string[], subscribed: string[]) {
    this.ts = new TypeSnapshot(endpoints(names), 1n, 1);
    this.subscribe(...subscribed);
  }

  /** The view's endpoints become `names` (the stream looks at once, as after a push). */
  change(names: string[], changed: string[]): void {
    this.ts = this.ts.next(endpoints(names), new Set(changed), BigInt(++this.generation), this.generation);
    this.state.generation = this.generation;
  }
  subscribe(...names: string[]): void {
    for (const n of names) this.state.names.add(n);
    this.state.namesVersion++;
  }
  unsubscribe(...names: string[]): void {
    for (const n of names) {
      this.state.names.delete(n);
      this.state.droppedNames.push(n);
      this.state.namesDropped++;
    }
    this.state.namesVersion++;
  }
  holds(): boolean {
    const snapshot = Object.fromEntries(
      kinds.map((k) => [k, k === 'endpoint' ? this.ts : none]),
    ) as unknown as ServedSnapshot;
    return deltaHoldsView(new Map([['endpoint', this.state]]), snapshot);
  }
}

describe('deltaHoldsView: remembered coverage, updated by the names changed since', () => {
  it('a name added to the view that the stream does not ask for uncovers it', () => {
    const f = new Fixture(['a', 'b'], ['a', 'b']);
    expect(f.holds()).toBe(true);
    f.change(['a', 'b', 'c'], ['c']);
    expect(f.holds()).toBe(false);
    f.subscribe('c');
    expect(f.holds()).toBe(true);
  });

  it('an uncovered stream stays uncovered when only other names change', () => {
    const f = new Fixture(['a', 'b'], ['a']);
    expect(f.holds()).toBe(false);
    f.change(['a', 'b'], ['a']);
    expect(f.holds()).toBe(false);
  });

  it('a removed or changed name keeps a covered stream covered', () => {
    const f = new Fixture(['a', 'b', 'c'], ['a', 'b', 'c']);
    expect(f.holds()).toBe(true);
    f.change(['a', 'b'], ['c']);
    expect(f.holds()).toBe(true);
    f.change(['a', 'b'], ['a']);
    expect(f.holds()).toBe(true);
  });

  it('a dropped name uncovers a stream whose view did not change; added names keep it covered', () => {
    const f = new Fixture(['a', 'b'], ['a', 'b']);
    expect(f.holds()).toBe(true);
    f.subscribe('x');
    expect(f.holds()).toBe(true);
    f.unsubscribe('b');
    expect(f.holds()).toBe(false);
    f.subscribe('b');
    expect(f.holds()).toBe(true);
  });

  it('an uncovered stream is covered once it asks for the missing name, or the name goes', () => {
    const f = new Fixture(['a', 'b', 'c'], ['a']);
    expect(f.holds()).toBe(false);
    f.subscribe('b');
    expect(f.holds()).toBe(false);
    f.change(['a', 'b'], ['c']);
    expect(f.holds()).toBe(true);
  });

  it('more resources missing than are listed: looked at in full until few are left', () => {
    const all = Array.from({ length: 40 }, (_, i) => `r${i}`);
    const f = new Fixture(all, []);
    expect(f.holds()).toBe(false);
    f.subscribe(...all.slice(0, 30));
    expect(f.holds()).toBe(false);
    f.subscribe(...all.slice(30, 39));
    expect(f.holds()).toBe(false);
    f.subscribe('r39');
    expect(f.holds()).toBe(true);
  });

  it('more names dropped than remembered: looked at in full', () => {
    const all = Array.from({ length: 40 }, (_, i) => `r${i}`);
    const f = new Fixture(all, all);
    expect(f.holds()).toBe(true);
    f.unsubscribe(...all.slice(0, 30));
    f.state.droppedNames.splice(0, 20); // as the subscription keeps only the last few
    f.subscribe(...all.slice(20, 30));
    expect(f.holds()).toBe(false);
  });

  it('a stream further behind than the remembered steps is looked at in full', () => {
    const f = new Fixture(['a'], ['a']);
    expect(f.holds()).toBe(true);
    for (let i = 0; i < 70; i++) f.change(['a'], ['a']);
    f.change(['a', 'z'], ['z']);
    for (let i = 0; i < 70; i++) f.change(['a', 'z'], ['a']);
    expect(f.holds()).toBe(false);
  });
});
