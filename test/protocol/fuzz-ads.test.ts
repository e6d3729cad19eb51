// Property-based fuzzing of the ADS request decoder: random bytes and mutated DiscoveryRequest /
// DeltaDiscoveryRequest encodings, through the decoder directly and through real gRPC streams. Never a
// crash (a malformed request ends its own stream with a status, nothing else), and nothing kept once
// the streams end. A fixed seed and a small count here; `make fuzz-xds` runs many more
// (FUZZ_XDS_RUNS) and prints its case counts.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResourceKind } from '../../src/envoy/protos.js';
import { decodeSotwRequest, SubscriptionTable } from '../../src/xds/request.js';
import { AdsClient, originateMeta } from '../helpers/ads-client.js';
import { retainedBytes } from '../helpers/heap.js';
import { serviceYaml } from '../helpers/objects.js';
import { RawAdsConnection, deltaRequest, sotwRequest, type AdsMethod } from '../helpers/raw-ads.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { waitFor } from '../helpers/wait.js';

const runs = Number(process.env.FUZZ_XDS_RUNS ?? 300);
const streamRuns = Math.max(50, Math.round(runs / 4));
const seed = Number(process.env.FUZZ_XDS_SEED ?? 20261129);
const kinds: ResourceKind[] = ['cluster', 'endpoint', 'listener', 'route'];
const INTERNAL = 13;

const name = fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('*', '', 'originate/a/b/1', '\u0000', '\u001b[2J'));
const node = fc.record({
  id: fc.string({ maxLength: 30 }),
  metadata: fc.dictionary(
    fc.constantFrom('tunnel-shim.io/role', 'tunnel-shim.io/listen-address', 'x'),
    fc.constantFrom('originate', 'terminate', 'relay', '127.0.0.1', '::1', 'bogus', ''),
  ),
});
const sotw = fc
  .record({
    kind: fc.constantFrom(...kinds),
    typeUrl: fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
    names: fc.array(name, { maxLength: 20 }),
    node: fc.option(node, { nil: undefined }),
    nonce: fc.string({ maxLength: 12 }),
    version: fc.string({ maxLength: 12 }),
    error: fc.option(fc.string({ maxLength: 30 }), { nil: undefined }),
  })
  .map((r) => sotwRequest(r));
const delta = fc
  .record({
    kind: fc.constantFrom(...kinds),
    subscribe: fc.array(name, { maxLength: 20 }),
    unsubscribe: fc.array(name, { maxLength: 5 }),
    initial: fc.dictionary(fc.string({ maxLength: 20 }), fc.string({ maxLength: 8 }), { maxKeys: 5 }),
    node: fc.option(node, { nil: undefined }),
  })
  .map((r) => deltaRequest(r));

/** A valid encoding, then flipped bytes, a truncation, inserted garbage or a repeated slice. */
function mutated(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  const edit = fc.oneof(
    fc.record({ op: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({
      op: fc.constant('insert' as const),
      at: fc.nat(),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 12 }),
    }),
    fc.record({ op: fc.constant('repeat' as const), at: fc.nat(), length: fc.nat({ max: 40 }) }),
  );
  return fc.tuple(valid, fc.array(edit, { minLength: 1, maxLength: 4 })).map(([bytes, edits]) => {
    let out = Buffer.from(bytes);
    for (const e of edits) {
      const at = out.length === 0 ? 0 : e.at % out.length;
      if (e.op === 'flip' && out.length > 0) out[at] = e.value;
      else if (e.op === 'truncate') out = out.subarray(0, at);
      else if (e.op === 'insert') out = Buffer.concat([out.subarray(0, at), e.bytes, out.subarray(at)]);
      else if (e.op === 'repeat') out = Buffer.concat([out, out.subarray(at, at + e.length)]);
    }
    return new Uint8Array(out);
  });
}

const sotwBytes = fc.oneof(sotw, mutated(sotw), fc.uint8Array({ maxLength: 256 }));
const deltaBytes = fc.oneof(delta, mutated(delta), fc.uint8Array({ maxLength: 256 }));

describe('the SotW request decoder, directly', () => {
  it(`decodes or throws an Error for any bytes; names it decodes are released to nothing (${runs} cases)`, () => {
    let decoded = 0;
    let refused = 0;
    const table = new SubscriptionTable();
    fc.assert(
      fc.property(sotwBytes, (bytes) => {
        let sub;
        try {
          const r = decodeSotwRequest(bytes, table);
          sub = table.of(r.namesRaw ?? new Uint8Array(0));
          decoded++;
        } catch (err) {
          // protobufjs reports malformed input as an Error; anything else would be a bug.
          expect(err).toBeInstanceOf(Error);
          refused++;
        }
        if (sub) table.release(sub);
      }),
      { seed, numRuns: runs },
    );
    console.log(`fuzz (decoder): ${runs} cases, ${decoded} decoded, ${refused} refused as malformed`);
    expect(table.stats()).toEqual({ count: 0, bytes: 0 });
  });
});

describe('ADS streams fed random and mutated requests', () => {
  let shim: TestShim;
  beforeAll(async () => {
    shim = await startShim({
      'a.yaml': serviceYaml({
        name: 'a',
        namespace: 'fz',
        clusterIP: '10.96.6.1',
        port: 7401,
        endpoints: [{ ip: '10.6.0.1', port: 80 }],
      }),
    });
  });
  afterAll(async () => {
    await shim.stop();
  });

  it(`never crash the shim, end only their own stream, leave nothing behind (${streamRuns} cases each)`, async () => {
    const statuses = new Map<number, number>();
    const internal: string[] = [];
    const conn = new RawAdsConnection(shim.xdsAddress);
    const variants: [AdsMethod, fc.Arbitrary<Uint8Array>, (id: string) => Uint8Array][] = [
      [
        'StreamAggregatedResources',
        sotwBytes,
        (id) => sotwRequest({ kind: 'cluster', node: { id, metadata: originateMeta } }),
      ],
      [
        'DeltaAggregatedResources',
        deltaBytes,
        (id) => deltaRequest({ kind: 'cluster', node: { id, metadata: originateMeta } }),
      ],
    ];
    // Each case: a stream that may start validly, then gets 1-3 fuzzed messages and half-closes.
    const casesOf = (arbitrary: fc.Arbitrary<Uint8Array>, numRuns: number, offset: number) =>
      fc.sample(fc.tuple(fc.boolean(), fc.array(arbitrary, { minLength: 1, maxLength: 3 })), {
        seed: seed + offset,
        numRuns,
      });
    const run = async (method: AdsMethod, first: (id: string) => Uint8Array, cases: [boolean, Uint8Array[]][]) => {
      for (let i = 0; i < cases.length; i += 25) {
        const batch = cases.slice(i, i + 25).map(([validFirst, messages], j) => {
          const s = conn.open(method);
          if (validFirst) s.write(first(`fuzz-${method}-${i + j}`));
          for (const m of messages) s.write(m);
          s.end();
          return s.closedWithin(20_000);
        });
        for (const status of await Promise.all(batch)) {
          statuses.set(status.code, (statuses.get(status.code) ?? 0) + 1);
          if (status.code === INTERNAL) internal.push(status.message);
        }
      }
    };
    let before = 0;
    try {
      // A first round as large, of other cases, warms up what the process builds once (decoders, compiled
      // code, string tables: +2.6 MB after 4,000 streams, and little more after a second round); then measure.
      for (const [method, arbitrary, first] of variants) await run(method, first, casesOf(arbitrary, streamRuns, 1));
      await waitFor(
        'the warm-up streams gone',
        () => shim.shim.xds.streams.size === 0 && shim.shim.xds.deltaStreams.size === 0,
      );
      before = await retainedBytes();
      for (const [method, arbitrary, first] of variants) await run(method, first, casesOf(arbitrary, streamRuns, 0));
    } finally {
      conn.close();
    }
    await waitFor(
      'every fuzzed stream gone',
      () => shim.shim.xds.streams.size === 0 && shim.shim.xds.deltaStreams.size === 0,
    );
    // The shim still serves a well-behaved client.
    const healthy = new AdsClient(shim.xdsAddress, { id: 'after-fuzz', metadata: originateMeta });
    try {
      healthy.send('cluster');
      expect((await healthy.next('cluster')).resources).toHaveLength(1);
    } finally {
      healthy.close();
    }
    await waitFor('the healthy client gone', () => shim.shim.xds.streams.size === 0);
    const after = await retainedBytes();
    const byCode = [...statuses]
      .sort(([a], [b]) => a - b)
      .map(([code, n]) => `${code}: ${n}`)
      .join(', ');
    console.log(
      `fuzz (gRPC): ${streamRuns * 4} streams (half of them warm-up), statuses by gRPC code {${byCode}}; ` +
        `retained +${((after - before) / 1e6).toFixed(2)} MB after they ended`,
    );
    // Malformed or invalid input gets a status that says what is wrong, never INTERNAL.
    expect(internal).toEqual([]);
    expect(shim.shim.xds.subscriptions.stats()).toEqual({ count: 0, bytes: 0 });
    expect(after - before).toBeLessThan(4e6);
  });
});
