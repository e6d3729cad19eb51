// What the load generator watches for: when every originate stream has seen a change. Responses are
// searched as they arrive, whether or not the change is watched yet: the watch comes over IPC and, when
// the generator is busy, can be read after the first responses carrying the change.
//  - marker: an endpoint moved to a unique address in 10.200.0.0/16 (fixtures.ts markerAddress);
//  - add: a new Service `added-<k>`: its cluster and its listener arrived, and its endpoints (at a marker
//    address), so an Envoy could route to it;
//  - remove: that Service's cluster and listener are gone (SotW: a CDS and an LDS response without
//    them; delta: both named in removed_resources).

const latin1 = new TextDecoder('latin1');
const markerPrefix = Buffer.from('10.200.');
const addedPrefix = Buffer.from('/added-');

export type WatchKind = 'marker' | 'add' | 'remove';
export interface WatchRequest {
  kind?: WatchKind;
  marker?: string;
  name?: string;
  t0: number;
}
export interface SeenReport {
  cmd: 'seen';
  /** The marker (marker), or `add:<name>` / `remove:<name>`. */
  marker: string;
  latencyMs: number;
  firstMs: number;
}

type Kinds = 'cluster' | 'listener';
type Times = Map<object, { cluster?: number; listener?: number }>;

export const watchKey = (w: WatchRequest) =>
  w.kind === 'add' || w.kind === 'remove' ? `${w.kind}:${w.name}` : w.marker!;

/** Names `added-<k>` in a response's bytes. */
function addedNames(raw: Buffer): Set<string> {
  const out = new Set<string>();
  for (let i = raw.indexOf(addedPrefix); i >= 0; i = raw.indexOf(addedPrefix, i + 1)) {
    let end = i + addedPrefix.length;
    while (end < raw.length && raw[end]! >= 0x30 && raw[end]! <= 0x39) end++;
    out.add(latin1.decode(raw.subarray(i + 1, end)));
  }
  return out;
}

/** Marker addresses in a response's bytes. */
function markersIn(raw: Buffer): string[] {
  const out: string[] = [];
  for (let i = raw.indexOf(markerPrefix); i >= 0; i = raw.indexOf(markerPrefix, i + 1)) {
    let end = i + markerPrefix.length;
    while (end < raw.length && ((raw[end]! >= 0x30 && raw[end]! <= 0x39) || raw[end] === 0x2e)) end++;
    out.push(latin1.decode(raw.subarray(i, end)));
  }
  return out;
}

interface Scan {
  markers: string[];
  added: Set<string>;
}

export class Tracker {
  private readonly markers = new Map<string, Map<object, number>>();
  private readonly present = new Map<string, Times>();
  private readonly gone = new Map<string, Times>();
  private readonly state = new WeakMap<object, Record<Kinds, Set<string>>>();
  private readonly watches = new Map<string, WatchRequest>();
  private readonly done = new Set<string>();
  /** An add watch's marker -> its key. */
  private readonly addByMarker = new Map<string, string>();

  constructor(
    private readonly expected: () => number,
    private readonly report: (m: SeenReport) => void,
  ) {}

  /** What a response's bytes hold, by content (`contentKey`): 500 streams get the same full-state response. */
  private readonly scans = new Map<string, Scan>();

  /**
   * One response to an originate stream; `removed` are a delta response's removed names. `contentKey`
   * names the response's content when equal keys mean equal bytes (a SotW CDS or LDS version): its bytes
   * are then searched once, not once per stream.
   */
  onResponse(
    stream: object,
    raw: Buffer,
    type: Kinds | undefined,
    removed: string[] | undefined,
    t: number,
    contentKey?: string,
  ) {
    let scan = contentKey === undefined ? undefined : this.scans.get(contentKey);
    if (!scan) {
      scan = { markers: markersIn(raw), added: addedNames(raw) };
      if (contentKey !== undefined) {
        if (this.scans.size >= 64) this.scans.clear();
        this.scans.set(contentKey, scan);
      }
    }
    const touched: string[] = [];
    for (const marker of scan.markers) {
      if (this.done.has(marker)) continue;
      let seen = this.markers.get(marker);
      if (!seen) this.markers.set(marker, (seen = new Map()));
      if (!seen.has(stream)) seen.set(stream, t);
      touched.push(marker, ...(this.addByMarker.has(marker) ? [this.addByMarker.get(marker)!] : []));
    }
    if (type) touched.push(...this.onNames(stream, scan.added, type, removed, t));
    for (const key of touched) this.settle(key);
  }

  /** Records names that appeared or went; returns the watch keys they may complete. */
  private onNames(stream: object, found: Set<string>, type: Kinds, removed: string[] | undefined, t: number): string[] {
    let state = this.state.get(stream);
    if (!state) this.state.set(stream, (state = { cluster: new Set(), listener: new Set() }));
    const before = state[type];
    let after = found;
    if (removed) {
      // Delta: the response names what changed; removed names also appear in its bytes.
      const gone = new Set(removed.flatMap((n) => [...addedNames(Buffer.from(n))]));
      after = new Set([...before, ...found].filter((n) => !gone.has(n)));
    }
    const mark = (map: Map<string, Times>, name: string) => {
      let times = map.get(name);
      if (!times) map.set(name, (times = new Map()));
      const entry = times.get(stream) ?? {};
      entry[type] = t;
      times.set(stream, entry);
    };
    const touched: string[] = [];
    for (const n of after) {
      if (before.has(n)) continue;
      mark(this.present, n);
      touched.push(`add:${n}`);
    }
    for (const n of before) {
      if (after.has(n)) continue;
      mark(this.gone, n);
      touched.push(`remove:${n}`);
    }
    state[type] = after;
    return touched;
  }

  watch(w: WatchRequest): void {
    const key = watchKey(w);
    this.watches.set(key, w);
    if (w.kind === 'add') this.addByMarker.set(w.marker!, key);
    this.settle(key);
  }

  unwatch(key: string): number {
    const w = this.watches.get(key);
    if (w?.marker) this.addByMarker.delete(w.marker);
    this.watches.delete(key);
    this.done.add(key);
    const seen = this.markers.get(key)?.size ?? -1;
    this.markers.delete(key);
    return seen;
  }

  /** When each stream completed the watched change (undefined: not yet). */
  private completions(w: WatchRequest): number[] {
    const out: number[] = [];
    if (w.kind === 'add') {
      const markers = this.markers.get(w.marker!);
      for (const [stream, times] of this.present.get(w.name!) ?? []) {
        const m = markers?.get(stream);
        if (m !== undefined && times.cluster !== undefined && times.listener !== undefined)
          out.push(Math.max(m, times.cluster, times.listener));
      }
    } else if (w.kind === 'remove') {
      for (const times of this.gone.get(w.name!)?.values() ?? [])
        if (times.cluster !== undefined && times.listener !== undefined)
          out.push(Math.max(times.cluster, times.listener));
    } else out.push(...(this.markers.get(w.marker!)?.values() ?? []));
    return out;
  }

  private settle(key: string) {
    const w = this.watches.get(key);
    if (!w) return;
    // A marker is complete once enough streams saw it: counted, not listed, on each of 1,000 responses.
    const marker = !w.kind || w.kind === 'marker';
    if (marker && (this.markers.get(w.marker!)?.size ?? 0) < this.expected()) return;
    const times = this.completions(w);
    if (times.length < this.expected()) return;
    this.watches.delete(key);
    this.done.add(key);
    if (w.marker) {
      this.markers.delete(w.marker);
      this.addByMarker.delete(w.marker);
      this.done.add(w.marker);
    }
    if (w.kind === 'add') this.present.delete(w.name!);
    if (w.kind === 'remove') this.gone.delete(w.name!);
    const first = Math.min(...times);
    const last = Math.max(...times);
    this.report({ cmd: 'seen', marker: key, latencyMs: last - w.t0, firstMs: first - w.t0 });
  }
}
