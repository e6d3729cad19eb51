// Model-based test of one ADS stream, SotW and delta: random changes to a view's clusters and endpoints,
// and a client that acts as Envoy does (ACKs every response, subscribes to the endpoints of every cluster
// it holds, sometimes to names that do not exist). Whatever the order, once the client has answered
// everything it holds exactly the view: streams look only at what changed and at names out of line
// (not at every name), and this is what shows that nothing is missed.
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { contentVersion, encodeResource, type EncodedResource } from '../../src/envoy/encode.js';
import { lookupType, TypeUrl, type ResourceKind } from '../../src/envoy/protos.js';
import { TypeSnapshot } from '../../src/cache/snapshot.js';
import type { ServedSnapshot, Watch } from '../../src/cache/watch.js';
import { DeltaStream } from '../../src/xds/delta.js';
import { SotwStream } from '../../src/xds/sotw-stream.js';
import { SubscriptionTable } from '../../src/xds/request.js';
import type { BaseStream } from '../../src/xds/base-stream.js';

const kinds: ResourceKind[] = ['listener', 'route', 'cluster', 'endpoint', 'extension', 'secret'];
const sotwResponse = lookupType('envoy.service.discovery.v3.DiscoveryResponse');
const deltaResponse = lookupType('envoy.service.discovery.v3.DeltaDiscoveryResponse');
const anyType = lookupType('google.protobuf.Any');
const namesField = lookupType('envoy.service.discovery.v3.DiscoveryRequest').fields.resource_names!.id;

/** A view of clusters c<k> (content `rev`) and their endpoints (content `ep`). */
type View = Map<number, { rev: number; ep: number }>;

const clusterOf = (k: number, rev: number) =>
  encodeResource(
    TypeUrl.cluster,
    `c${k}`,
    { name: `c${k}`, type: 'EDS', connect_timeout: { seconds: rev } },
    { name: `c${k}`, rev },
  );
const endpointsOf = (k: number, ep: number) =>
  encodeResource(
    TypeUrl.endpoint,
    `c${k}`,
    { cluster_name: `c${k}`, policy: { overprovisioning_factor: { value: ep + 1 } } },
    { cluster_name: `c${k}`, ep },
  );

/** A fake cache for one view: TypeSnapshots with change steps, as the real cache builds them. */
class FakeWatch implements Watch {
  readonly view = { role: 'originate' } as Watch['view'];
  private current?: Record<ResourceKind, TypeSnapshot>;
  private generation = 0;

  set(view: View): void {
    const next = {} as Record<ResourceKind, TypeSnapshot>;
    const wanted: Partial<Record<ResourceKind, Map<string, EncodedResource>>> = {
      cluster: new Map([...view].map(([k, v]) => [`c${k}`, clusterOf(k, v.rev)])),
      endpoint: new Map([...view].map(([k, v]) => [`c${k}`, endpointsOf(k, v.ep)])),
    };
    for (const kind of kinds) {
      const resources = wanted[kind] ?? new Map<string, EncodedResource>();
      let sum = 0n;
      for (const r of resources.values()) sum += BigInt(`0x${contentVersion(r.name, '\n', r.version)}`);
      sum &= (1n << 64n) - 1n;
      const prior = this.current?.[kind];
      if (!prior) next[kind] = new TypeSnapshot(resources, sum, ++this.generation);
      else if (prior.sum === sum) next[kind] = prior;
      else {
        const names = new Set<string>();
        for (const [name, r] of resources) if (prior.resources.get(name)?.version !== r.version) names.add(name);
        for (const name of prior.resources.keys()) if (!resources.has(name)) names.add(name);
        next[kind] = prior.next(resources, names, sum, ++this.generation);
      }
    }
    this.current = next;
  }
  snapshot(): ServedSnapshot | undefined {
    return this.current;
  }
  cancel(): void {}
}

const encodeNames = (names: Iterable<string>) => {
  const w = protobuf.Writer.create();
  for (const n of [...names].sort()) w.uint32((namesField << 3) | 2).string(n);
  return w.finish();
};

/** What an Envoy holds and asks for, per type: name -> content version. */
class Client {
  readonly held = { cluster: new Map<string, string>(), endpoint: new Map<string, string>() };
  /** Endpoint names asked for besides the clusters held (names that may not exist). */
  readonly extra = new Set<string>();
  private subscribed = new Set<string>();
  private readonly last = new Map<string, { nonce: string; version: string }>();

  constructor(
    readonly delta: boolean,
    private readonly stream: SotwStream | DeltaStream,
    private readonly inbox: Buffer[],
    /** Called between answering a response and asking for what it brought: a state only a probe sees. */
    private readonly probe: () => void = () => {},
  ) {}

  start(): void {
    this.request('cluster', {});
    this.request('endpoint', {});
  }

  /** Reads every response so far (and those its answers cause); returns how many it read. */
  drain(): number {
    let read = 0;
    while (this.inbox.length > 0 && read < 10_000) {
      this.receive(this.inbox.shift()!);
      read++;
    }
    return read;
  }

  /** The endpoint names the client should ask for now. */
  wanted(): Set<string> {
    return new Set([...this.held.cluster.keys(), ...this.extra]);
  }

  resubscribe(): void {
    const next = this.wanted();
    const add = [...next].filter((n) => !this.subscribed.has(n));
    const drop = [...this.subscribed].filter((n) => !next.has(n));
    if (add.length === 0 && drop.length === 0) return;
    this.subscribed = next;
    // Envoy forgets what it no longer asks for.
    for (const n of drop) this.held.endpoint.delete(n);
    if (this.delta) this.request('endpoint', { subscribe: add, unsubscribe: drop });
    else this.request('endpoint', { ...this.last.get('endpoint') });
  }

  private receive(raw: Buffer): void {
    if (this.delta) {
      const r = deltaResponse.toObject(deltaResponse.decode(raw), { defaults: true }) as {
        type_url: string;
        nonce: string;
        resources: { name: string; version: string; resource: { value: Uint8Array } }[];
        removed_resources: string[];
      };
      const kind = r.type_url === TypeUrl.cluster ? 'cluster' : 'endpoint';
      for (const res of r.resources) this.held[kind].set(res.name, res.version);
      for (const name of r.removed_resources) this.held[kind].delete(name);
      this.request(kind, { nonce: r.nonce });
      this.probe();
      if (kind === 'cluster') this.resubscribe();
      return;
    }
    const r = sotwResponse.toObject(sotwResponse.decode(raw), { defaults: true }) as {
      type_url: string;
      nonce: string;
      version_info: string;
      resources: { type_url: string; value: Uint8Array }[];
    };
    const kind = r.type_url === TypeUrl.cluster ? 'cluster' : 'endpoint';
    const versions = r.resources.map((any) => {
      const bytes = anyType.encode(anyType.create(any)).finish();
      const message = lookupType(
        kind === 'cluster' ? 'envoy.config.cluster.v3.Cluster' : 'envoy.config.endpoint.v3.ClusterLoadAssignment',
      ).decode(any.value) as unknown as { name?: string; cluster_name?: string };
      return [message.name ?? message.cluster_name ?? '', contentVersion(bytes)] as const;
    });
    // CDS carries the whole state; EDS only what changed.
    if (kind === 'cluster') this.held.cluster.clear();
    for (const [name, version] of versions) this.held[kind].set(name, version);
    this.last.set(kind, { nonce: r.nonce, version: r.version_info });
    this.probe();
    if (kind === 'cluster') this.resubscribe();
    this.request(kind, { nonce: r.nonce, version: r.version_info });
  }

  private request(
    kind: 'cluster' | 'endpoint',
    r: { nonce?: string; version?: string; subscribe?: string[]; unsubscribe?: string[] },
  ) {
    if (this.delta) {
      (this.stream as DeltaStream).onRequest({
        type_url: TypeUrl[kind],
        response_nonce: r.nonce ?? '',
        resource_names_subscribe: r.subscribe ?? [],
        resource_names_unsubscribe: r.unsubscribe ?? [],
      });
      return;
    }
    (this.stream as SotwStream).onRequest({
      type_url: TypeUrl[kind],
      version_info: r.version ?? '',
      response_nonce: r.nonce ?? '',
      namesRaw: kind === 'endpoint' ? encodeNames(this.subscribed) : new Uint8Array(0),
    });
  }
}

type Op =
  { op: 'add' | 'remove' | 'cluster' | 'endpoints'; k: number } | { op: 'ask' | 'forget'; k: number } | { op: 'read' };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constantFrom('add', 'remove', 'cluster', 'endpoints' as const),
    k: fc.integer({ min: 0, max: 12 }),
  }),
  fc.record({ op: fc.constantFrom('ask', 'forget' as const), k: fc.integer({ min: 0, max: 14 }) }),
  fc.constant({ op: 'read' as const }),
) as fc.Arbitrary<Op>;

function run(delta: boolean, ops: Op[]): void {
  const view: View = new Map([0, 1, 2, 3].map((k) => [k, { rev: 0, ep: 0 }]));
  const watch = new FakeWatch();
  watch.set(view);
  const inbox: Buffer[] = [];
  const sink = { write: (b: Buffer) => (inbox.push(b), true), hasRoom: () => true };
  const events = { sent: () => {}, decided: () => {} };
  const node = { id: 'n', cluster: 'c', view: watch.view, message: {} };
  const stream: BaseStream & (SotwStream | DeltaStream) = delta
    ? new DeltaStream(node, watch, sink, events, 'cp')
    : new SotwStream(node, watch, sink, events, 'cp', new SubscriptionTable());
  // holdsView remembers coverage (and delta updates it from the names changed since): at every step its
  // answer must be the one worked out afresh.
  const fresh = () => {
    const remembered = stream.holdsView();
    const memos = [...stream.types.values()].map((state) => [state, state.coverage] as const);
    for (const [state] of memos) state.coverage = undefined;
    expect(remembered).toBe(stream.holdsView());
    for (const [state, memo] of memos) state.coverage = memo as never;
  };
  const client = new Client(delta, stream, inbox, fresh);
  client.start();
  for (const o of ops) {
    fresh();
    if (o.op === 'read') {
      client.drain();
      continue;
    }
    if (o.op === 'ask') client.extra.add(`c${o.k}`);
    if (o.op === 'forget') client.extra.delete(`c${o.k}`);
    if (o.op === 'ask' || o.op === 'forget') {
      client.resubscribe();
      continue;
    }
    const entry = view.get(o.k);
    if (o.op === 'add') view.set(o.k, { rev: (entry?.rev ?? 0) + 1, ep: (entry?.ep ?? 0) + 1 });
    else if (o.op === 'remove') view.delete(o.k);
    else if (entry && o.op === 'cluster') entry.rev++;
    else if (entry && o.op === 'endpoints') entry.ep++;
    watch.set(view);
    stream.push();
  }
  for (let i = 0; i < 20 && client.drain() > 0; i++) fresh();
  const snapshot = watch.snapshot()!;
  const want = (kind: 'cluster' | 'endpoint', names?: Set<string>) =>
    new Map(
      [...snapshot[kind].resources].filter(([name]) => !names || names.has(name)).map(([name, r]) => [name, r.version]),
    );
  expect(client.held.cluster).toEqual(want('cluster'));
  const asked = client.wanted();
  // SotW has no way to say a non-wildcard resource is gone (Envoy drops it with its cluster): only delta
  // is held to forget endpoints of names that do not exist.
  const judged = (name: string) => asked.has(name) && (delta || snapshot.endpoint.resources.has(name));
  const heldAsked = new Map([...client.held.endpoint].filter(([name]) => judged(name)));
  expect(heldAsked).toEqual(want('endpoint', asked));
  expect(stream.holdsView()).toBe(true);
}

const runs = Number(process.env.STREAM_MODEL_RUNS ?? 300);
const seed = Number(process.env.STREAM_MODEL_SEED ?? 20261129);

describe('an ADS stream brings its client in line with the view, whatever the order of changes', () => {
  for (const delta of [false, true])
    it(`${delta ? 'delta' : 'SotW'}: ${runs} random sequences of view changes, subscriptions and reads`, () => {
      fc.assert(
        fc.property(fc.array(op, { maxLength: 40 }), (ops) => run(delta, ops)),
        { numRuns: runs, seed },
      );
    });
});
