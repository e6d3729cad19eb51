// Responses go out in the gRPC frame they were encoded in (no copy per stream: src/xds/grpc-internals.ts).
// Real gRPC clients, SotW and delta, decode them exactly as they decode responses grpc-js frames itself
// (its path when the hook is off or its internals moved), on the first sync and on a change fanned out
// to streams of both kinds at once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdsClient, originateMeta, type Response } from '../helpers/ads-client.js';
import { DeltaClient, type DeltaResponse } from '../helpers/delta-client.js';
import { serviceYaml } from '../helpers/objects.js';
import { startShim, type TestShim } from '../helpers/shim.js';

let shim: TestShim;
const clients: { close(): void }[] = [];

const svc = (i: number) =>
  serviceYaml({
    name: `f${i}`,
    namespace: 'frm',
    clusterIP: `10.98.0.${i + 1}`,
    port: 7000 + i,
    endpoints: [{ ip: `10.4.0.${i + 1}`, port: 8080 }],
  });

beforeAll(async () => {
  const files: Record<string, string> = {};
  for (let i = 0; i < 20; i++) files[`f${i}.yaml`] = svc(i);
  shim = await startShim(files, { rolloutTimeoutMs: 100 });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await shim.stop();
});

/** A SotW and a delta originator, each subscribed to clusters and listeners and ACKing them. */
async function connect(tag: string) {
  const sotw = new AdsClient(shim.xdsAddress, { id: `${tag}-sotw`, metadata: originateMeta });
  const delta = new DeltaClient(shim.xdsAddress, { id: `${tag}-delta`, metadata: originateMeta });
  clients.push(sotw, delta);
  sotw.autoAck = true;
  for (const kind of ['cluster', 'listener'] as const) {
    sotw.send(kind);
    await sotw.next(kind);
    delta.send(kind);
    delta.ack(await delta.next(kind));
  }
  return { sotw, delta };
}

/** What a client decoded, without the nonce (a stream's own, or shared by a view). */
const content = ({ nonce: _, ...rest }: Response | DeltaResponse) => rest;

describe('responses written in their encoded gRPC frame', () => {
  it('decode on SotW and delta clients exactly as responses grpc-js frames itself', async () => {
    const xds = shim.shim.xds;
    const framed = await connect('framed');
    expect(xds.framing.asIs).toBeGreaterThan(0);
    expect(xds.framing.copied).toBe(0);

    // Off: grpc-js frames (copies) each response itself, and nothing is written as is.
    xds.framesAsIs = false;
    const before = { ...xds.framing };
    const copied = await connect('copied');
    expect(xds.framing).toEqual(before);
    for (const kind of ['cluster', 'listener'] as const) {
      const [a, b] = [framed.sotw, copied.sotw].map((c) => c.responses.find((r) => r.kind === kind)!);
      expect(content(a!)).toEqual(content(b!));
      const [da, db] = [framed.delta, copied.delta].map((c) => c.responses.find((r) => r.kind === kind)!);
      expect(content(da!)).toEqual(content(db!));
    }

    // A change fans out to both pairs at once: hooked streams and copying ones get the same update.
    const asIs = xds.framing.asIs;
    const since = [framed.sotw, copied.sotw, framed.delta, copied.delta].map((c) => c.responses.length);
    shim.write('f20.yaml', svc(20));
    const [a, b] = await Promise.all([
      framed.sotw.nextSince('cluster', since[0]!, 10_000),
      copied.sotw.nextSince('cluster', since[1]!, 10_000),
    ]);
    const [da, db] = await Promise.all([
      framed.delta.nextSince('cluster', since[2]!, 10_000),
      copied.delta.nextSince('cluster', since[3]!, 10_000),
    ]);
    expect(a!.resources.map((r) => r.name)).toContain('originate/frm/f20/7020');
    expect(content(a!)).toEqual(content(b!));
    expect(da!.resources.map((r) => r.name)).toEqual(['originate/frm/f20/7020']);
    expect(content(da!)).toEqual(content(db!));
    expect(xds.framing.asIs).toBeGreaterThan(asIs);
  });
});
