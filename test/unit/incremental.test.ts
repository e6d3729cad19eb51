// Incremental builds equal builds from scratch. For random sequences of object changes (Services with
// the README's annotations, EndpointSlices, Pods and TCPRoutes added, changed, removed, parsed anew),
// what one long-lived model builder and cache serve every node view is, resource by resource and byte
// for byte, what a fresh builder and cache make of the same objects. The fresh build gets the previous
// model as its only history (a Service that breaks keeps its last good tunnels; the earlier owner of an
// address keeps it): that is meaning, not memo. A fixed seed in the suite; `make fuzz` runs more cases
// with a fresh seed (FUZZ_RUNS cases, FUZZ_SEED=N repeats one).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SnapshotCache } from '../../src/cache/cache.js';
import type { ServedSnapshot } from '../../src/cache/watch.js';
import type { NodeView } from '../../src/envoy/node-view.js';
import { pushOrder } from '../../src/envoy/protos.js';
import { buildModel, ModelBuilder } from '../../src/model/build.js';
import { formatDiagnostic, type Diagnostic } from '../../src/model/diagnostics.js';
import type { KubeObject, SourcedObject } from '../../src/model/objects.js';
import { defaultModelOptions, type Model } from '../../src/model/tunnel.js';
import { Pipeline } from '../../src/pipeline.js';
import type { Source, SourceState } from '../../src/sources/source.js';
import { translate } from '../../src/translate/index.js';
import { annotationsOf } from '../fuzz/values.js';
import pino from 'pino';

const fuzzing = process.env.FUZZ_RUNS !== undefined;
const runs = Number(process.env.FUZZ_RUNS ?? 50);
const seed = Number(process.env.FUZZ_SEED ?? (fuzzing ? Date.now() % 2 ** 31 : 20261129));
/** About 0.2 s per sequence here; a fuzz run stops at this bound whatever FUZZ_RUNS says. */
const timeoutMs = fuzzing ? 60 * 60_000 : 60_000;

const namespace = 'fz';
const services = ['a', 'b', 'c', 'd'];
const podIps = ['10.0.0.1', '10.0.0.2', '10.0.0.3', 'fd00::1'];
const pods = ['pod0', 'pod1', 'pod2', 'pod3'];

const views: NodeView[] = [
  { role: 'originate' },
  { role: 'originate', listenAddress: '127.0.0.1' },
  { role: 'originate', accessLog: '/tmp/node.log' },
  { role: 'terminate' },
  { role: 'terminate', listenAddress: '::' },
  ...podIps.map((ip): NodeView => ({ role: 'terminate', listenAddress: ip })),
  { role: 'relay' },
  { role: 'relay', relayHttpBackend: '127.0.0.1:8080' },
];

const meta = (name: string, extra: object = {}) => ({ name, namespace, ...extra });

/** The annotations that tie tunnels and views together, often; every other row of the table at random. */
const often = fc.record(
  {
    'tunnel-shim.io/placement': fc.constantFrom('gateway', 'sidecar'),
    'tunnel-shim.io/access-log': fc.constantFrom('/tmp/a.log', '/tmp/b.log'),
    'tunnel-shim.io/metadata-match': fc.constantFrom('{env: hema}', '{tier: x}'),
    'tunnel-shim.io/tunnel-port': fc.constantFrom('15008', '15009'),
    'tunnel-shim.io/relay-port': fc.constant('15010'),
    'tunnel-shim.io/idle-timeout': fc.constantFrom('1s', '5m'),
  },
  { requiredKeys: [] },
);

const service = fc
  .record({
    name: fc.constantFrom(...services),
    annotations: fc.tuple(often, annotationsOf(8)).map(([a, b]) => ({ ...a, ...b })),
    tunnel: fc.constantFrom('h2', 'h1', 'h2-post', ''),
    clusterIP: fc.constantFrom('10.96.0.1', '10.96.0.2', '10.96.0.3', 'None'),
    ports: fc.subarray([80, 443], { minLength: 1 }),
  })
  .map((s): KubeObject => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(s.name, { annotations: { 'tunnel-shim.io/tunnel': s.tunnel, ...s.annotations } }),
    spec: { clusterIP: s.clusterIP, ports: s.ports.map((port, i) => ({ name: `p${i}`, port })) },
  }));

const slice = fc
  .record({
    name: fc.constantFrom('a-1', 'a-2', 'b-1', 'c-1', 'd-1'),
    service: fc.constantFrom(...services),
    ports: fc.subarray(['p0', 'p1'], { minLength: 1 }),
    endpoints: fc.array(
      fc.record({ ip: fc.constantFrom(...podIps), ready: fc.boolean(), pod: fc.option(fc.constantFrom(...pods)) }),
      { maxLength: 3 },
    ),
  })
  .map((s): KubeObject => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: meta(s.name, { labels: { 'kubernetes.io/service-name': s.service } }),
    addressType: 'IPv4',
    ports: s.ports.map((name, i) => ({ name, port: 9000 + i })),
    endpoints: s.endpoints.map((e) => ({
      addresses: [e.ip],
      conditions: { ready: e.ready },
      ...(e.pod ? { targetRef: { kind: 'Pod', name: e.pod } } : {}),
    })),
  }));

const pod = fc
  .record({
    name: fc.constantFrom(...pods),
    ip: fc.constantFrom(...podIps),
    env: fc.constantFrom('hema', 'taobao'),
    tier: fc.constantFrom('x', 'y'),
  })
  .map((p): KubeObject => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: meta(p.name, { labels: { env: p.env, tier: p.tier } }),
    status: { podIP: p.ip },
  }));

const backend = fc.record({
  name: fc.constantFrom(...services),
  port: fc.constantFrom(80, 443),
  weight: fc.nat(100),
});
const route = fc
  .record({
    name: fc.constantFrom('r0', 'r1'),
    parent: fc.constantFrom(...services),
    parentPort: fc.option(fc.constantFrom(80, 443)),
    backends: fc.array(backend, { minLength: 1, maxLength: 2 }),
  })
  .map((r): KubeObject => ({
    apiVersion: 'gateway.networking.k8s.io/v1alpha2',
    kind: 'TCPRoute',
    metadata: meta(r.name),
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: r.parent, ...(r.parentPort ? { port: r.parentPort } : {}) }],
      rules: [{ backendRefs: r.backends }],
    },
  }));

type Change =
  | { put: KubeObject }
  | { remove: string }
  /** Every object parsed anew: equal content, new objects (the file source). */
  | { reparse: true };

const keyOf = (o: KubeObject) => `${o.kind}/${o.metadata?.name}`;
const change: fc.Arbitrary<Change> = fc.oneof(
  { weight: 3, arbitrary: service.map((put) => ({ put })) },
  { weight: 3, arbitrary: slice.map((put) => ({ put })) },
  { weight: 2, arbitrary: pod.map((put) => ({ put })) },
  { weight: 2, arbitrary: route.map((put) => ({ put })) },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(
        ...services.map((n) => `Service/${n}`),
        'EndpointSlice/a-1',
        'EndpointSlice/b-1',
        ...pods.map((n) => `Pod/${n}`),
        'TCPRoute/r0',
      )
      .map((remove) => ({ remove })),
  },
  { weight: 1, arbitrary: fc.constant({ reparse: true as const }) },
);

function apply(objects: Map<string, SourcedObject>, c: Change): void {
  if ('put' in c) objects.set(keyOf(c.put), { object: structuredClone(c.put) });
  else if ('remove' in c) objects.delete(c.remove);
  else for (const [key, o] of objects) objects.set(key, { object: structuredClone(o.object) });
}

/** Per view, type and name: the version and the encoded bytes served. */
function served(snapshot: ServedSnapshot | undefined): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const kind of pushOrder) {
    out[kind] = { version: snapshot?.[kind].version ?? 'none' };
    for (const [name, r] of snapshot?.[kind].resources ?? []) out[kind][name] = Buffer.from(r.any).toString('hex');
  }
  return out;
}

const lines = (diagnostics: Diagnostic[]) => diagnostics.map(formatDiagnostic).sort();

/** What a fresh builder and cache serve each view for `objects`, with `previous` as the only history. */
function fromScratch(objects: SourcedObject[], previous: Model | undefined) {
  const model = buildModel(objects, defaultModelOptions, previous && structuredClone(previous));
  const cache = new SnapshotCache(translate);
  cache.setModel(model);
  const perView = views.map((view) => {
    const { snapshot, diagnostics } = cache.peek(view);
    return { resources: served(snapshot), diagnostics: lines(diagnostics) };
  });
  return { model: lines(model.diagnostics), perView };
}

describe('incremental builds', () => {
  it(
    `serve every view exactly what a build from scratch serves (seed ${seed}, ${runs} sequences)`,
    () => {
      if (fuzzing) console.log(`incremental: seed ${seed} (FUZZ_SEED=${seed} to repeat), ${runs} sequences`);
      let steps = 0;
      fc.assert(
        fc.property(fc.array(change, { minLength: 1, maxLength: 12 }), (changes) => {
          const objects = new Map<string, SourcedObject>();
          const builder = new ModelBuilder(defaultModelOptions);
          const cache = new SnapshotCache(translate);
          const watches = views.map((view) => cache.watch(view, () => {}));
          let previous: Model | undefined;
          for (const c of changes) {
            apply(objects, c);
            const list = [...objects.values()];
            const expected = fromScratch(list, previous);
            const model = builder.build(list);
            cache.setModel(model);
            const actual = {
              model: lines(model.diagnostics),
              perView: views.map((view, i) => ({
                resources: served(watches[i]!.snapshot()),
                diagnostics: lines(cache.peek(view).diagnostics),
              })),
            };
            expect(actual).toEqual(expected);
            previous = model;
            steps++;
          }
        }),
        { seed, numRuns: runs, ...(fuzzing ? { interruptAfterTimeLimit: timeoutMs - 60_000 } : {}) },
      );
      expect(steps).toBeGreaterThan(runs);
    },
    timeoutMs,
  );
});

/** A source that hands the pipeline whatever the test pushes. */
class PushSource implements Source {
  private onChange?: (state: SourceState) => void;
  constructor(private first: SourceState) {}
  async start(onChange: (state: SourceState) => void): Promise<void> {
    this.onChange = onChange;
    onChange(this.first);
  }
  push(objects: SourcedObject[]): void {
    this.onChange!({ objects, diagnostics: [] });
  }
  async stop(): Promise<void> {}
  describe(): string {
    return 'test';
  }
}

describe('two pipelines in one process', () => {
  it('share nothing: the same objects in different orders give each its own correct result', async () => {
    const states = fc.sample(fc.array(change, { minLength: 4, maxLength: 8 }), { seed, numRuns: 6 }).map((cs) => {
      const objects = new Map<string, SourcedObject>();
      for (const c of cs) apply(objects, c);
      return [...objects.values()];
    });
    const logger = pino({ level: 'silent' });
    const start = async (order: SourcedObject[][]) => {
      const source = new PushSource({ objects: order[0]!, diagnostics: [] });
      const cache = new SnapshotCache(translate);
      const pipeline = new Pipeline(source, cache, { ...defaultModelOptions, quietMs: 0 }, logger);
      const watches = views.map((view) => cache.watch(view, () => {}));
      await pipeline.start();
      return { source, pipeline, watches, order };
    };
    // The very same objects, fed in opposite orders, one step of each in turn.
    const one = await start(states);
    const other = await start([...states].reverse());
    const check = ({ pipeline, watches }: typeof one, objects: SourcedObject[], previous: Model | undefined) => {
      const expected = fromScratch(objects, previous).perView.map((v) => v.resources);
      expect(watches.map((w) => served(w.snapshot()))).toEqual(expected);
      return pipeline.model;
    };
    const previous = [check(one, states[0]!, undefined), check(other, states.at(-1)!, undefined)];
    for (let i = 1; i < states.length; i++) {
      for (const [n, p] of [one, other].entries()) {
        p.source.push(p.order[i]!);
        previous[n] = check(p, p.order[i]!, previous[n]);
      }
    }
    // Then both the very same objects: nothing one parsed or built is the other's.
    const same: SourcedObject[] = [
      {
        object: {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: meta('a', { annotations: { 'tunnel-shim.io/tunnel': 'h2' } }),
          spec: { clusterIP: '10.96.0.9', ports: [{ name: 'p0', port: 80 }] },
        },
      },
      {
        object: {
          apiVersion: 'discovery.k8s.io/v1',
          kind: 'EndpointSlice',
          metadata: meta('a-1', { labels: { 'kubernetes.io/service-name': 'a' } }),
          ports: [{ name: 'p0', port: 9000 }],
          endpoints: [{ addresses: ['10.0.0.1'], targetRef: { kind: 'Pod', name: 'pod0' } }],
        },
      },
      { object: { apiVersion: 'v1', kind: 'Pod', metadata: meta('pod0', { labels: { env: 'hema' } }) } },
    ];
    one.source.push(same);
    other.source.push(same);
    const [mine, theirs] = [one, other].map((p) => p.pipeline.model!.tunnels[0]!.endpoints);
    expect(mine).toEqual([{ address: '10.0.0.1', port: 9000, labels: { env: 'hema' } }]);
    expect(mine).not.toBe(theirs);
    await one.pipeline.stop();
    await other.pipeline.stop();
  });
});
