// The benchmark's instruments (bench/watches.ts, bench/table.ts): when every stream has seen an added or
// removed Service, and a failing step that leaves its row while the table still prints.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { printTable, row, step } from '../../bench/table.js';
import { Tracker, type SeenReport } from '../../bench/watches.js';

const cds = (...names: string[]) => Buffer.from(names.map((n) => `originate/bench/${n}/10042`).join('|'));
const eds = (marker: string) => Buffer.from(`cluster_name originate/bench/added-1/10042 address ${marker} port`);

function tracker(streams: number) {
  const seen: SeenReport[] = [];
  return {
    seen,
    t: new Tracker(
      () => streams,
      (m) => seen.push(m),
    ),
  };
}

describe('bench watches', () => {
  it('an added Service counts once every stream has its cluster, listener and endpoints', () => {
    const { seen, t } = tracker(2);
    const [a, b] = [{}, {}];
    t.watch({ kind: 'add', name: 'added-1', marker: '10.200.0.7', t0: 100 });
    for (const s of [a, b]) {
      t.onResponse(s, cds('s1', 'added-1'), 'cluster', undefined, 110);
      t.onResponse(s, cds('s1', 'added-1'), 'listener', undefined, 120);
    }
    expect(seen).toEqual([]);
    t.onResponse(a, eds('10.200.0.7'), undefined, undefined, 130);
    t.onResponse(b, eds('10.200.0.7'), undefined, undefined, 150);
    expect(seen).toEqual([{ cmd: 'seen', marker: 'add:added-1', latencyMs: 50, firstMs: 30 }]);
  });

  it('responses read before the watch arrives still count (the watch comes over IPC)', () => {
    const { seen, t } = tracker(1);
    const s = {};
    t.onResponse(s, cds('added-1'), 'cluster', undefined, 10);
    t.onResponse(s, cds('added-1'), 'listener', undefined, 11);
    t.onResponse(s, eds('10.200.0.9'), undefined, undefined, 12);
    t.watch({ kind: 'add', name: 'added-1', marker: '10.200.0.9', t0: 5 });
    expect(seen.map((m) => m.latencyMs)).toEqual([7]);
  });

  it('a removal counts when the cluster and the listener are gone: SotW by absence, delta by removed_resources', () => {
    const sotw = tracker(1);
    const s = {};
    for (const type of ['cluster', 'listener'] as const) sotw.t.onResponse(s, cds('s1', 'added-2'), type, undefined, 1);
    sotw.t.watch({ kind: 'remove', name: 'added-2', t0: 10 });
    sotw.t.onResponse(s, cds('s1'), 'cluster', undefined, 20);
    expect(sotw.seen).toEqual([]);
    sotw.t.onResponse(s, cds('s1'), 'listener', undefined, 25);
    expect(sotw.seen.map((m) => m.latencyMs)).toEqual([15]);

    const delta = tracker(1);
    const d = {};
    for (const type of ['cluster', 'listener'] as const) delta.t.onResponse(d, cds('added-2'), type, [], 1);
    delta.t.watch({ kind: 'remove', name: 'added-2', t0: 10 });
    // A delta response naming another resource leaves added-2 in place; removed_resources takes it away.
    delta.t.onResponse(d, cds('s7'), 'cluster', [], 15);
    const gone = cds('added-2');
    delta.t.onResponse(d, gone, 'cluster', ['originate/bench/added-2/10042'], 18);
    delta.t.onResponse(d, gone, 'listener', ['originate/bench/added-2/10042'], 19);
    expect(delta.seen.map((m) => m.latencyMs)).toEqual([9]);
  });
});

describe('bench table', () => {
  afterEach(() => vi.restoreAllMocks());

  it('a failing step leaves a failed row and the steps after it still run and print', async () => {
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const out: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((line: string) => void out.push(line));
    await step('broken step', ['shared'], 5_000, async () => {
      throw new TypeError('fetch failed');
    });
    await step('slow step', ['shared'], 50, () => new Promise<void>(() => {}));
    await step('good step', ['shared'], 5_000, async () => row('good step', 'a figure', '42 ms', '<= 100 ms', true));
    printTable(['shared']);
    const table = out.join('\n');
    expect(table).toMatch(/broken step \| the step +\| failed: fetch failed/);
    expect(table).toMatch(/slow step +\| the step +\| failed: did not finish within/);
    expect(table).toMatch(/good step +\| a figure +\| 42 ms +\| <= 100 ms +\| met/);
  });
});
