// Encode once, fan out: a change to one Service validates and encodes only that Service's resources,
// however many streams (state of the world and delta, originators and terminators) are connected.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdsClient, originateMeta, terminateMeta } from '../helpers/ads-client.js';
import { DeltaClient } from '../helpers/delta-client.js';
import { serviceYaml } from '../helpers/objects.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { waitFor } from '../helpers/wait.js';

let shim: TestShim;
const clients: { close(): void }[] = [];
const services = 30;

// Each Service has its own endpoint address, so what a change touches is easy to name.
const svc = (i: number, ip = `10.2.${i}.1`) =>
  serviceYaml({
    name: `s${i}`,
    namespace: 'enc',
    clusterIP: `10.96.3.${i + 1}`,
    port: 7000 + i,
    endpoints: [{ ip, port: 8080 }],
  });

// A Service with its own access log on two endpoints: the terminators' connection managers log it.
const logged = (second: string) =>
  serviceYaml({
    name: 'logged',
    namespace: 'enc',
    clusterIP: '10.96.4.1',
    port: 7100,
    annotations: { 'tunnel-shim.io/access-log': '/dev/stdout' },
    endpoints: [
      { ip: '10.3.0.1', port: 8080 },
      { ip: second, port: 8080 },
    ],
  });

beforeAll(async () => {
  const files: Record<string, string> = { 'logged.yaml': logged('10.3.0.2') };
  for (let i = 0; i < services; i++) files[`s${i}.yaml`] = svc(i);
  // These clients never ask for routes or endpoints, so make-before-break waits for them until its
  // bound: a short one keeps the test quick (the rollout's steps are what is counted here).
  shim = await startShim(files, { rolloutTimeoutMs: 100 });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await shim.stop();
});

/** Connects `n` Envoy-like clients of each role and protocol, subscribed to everything, ACKing. */
async function connect(n: number, tag: string) {
  for (let i = 0; i < n; i++) {
    for (const [role, meta] of [
      ['o', originateMeta],
      ['t', terminateMeta],
    ] as const) {
      const sotw = new AdsClient(shim.xdsAddress, { id: `${tag}-${role}-sotw-${i}`, metadata: meta });
      sotw.send('cluster');
      sotw.ack(await sotw.next('cluster'));
      sotw.send('listener');
      sotw.ack(await sotw.next('listener'));
      const delta = new DeltaClient(shim.xdsAddress, { id: `${tag}-${role}-delta-${i}`, metadata: meta });
      delta.send('cluster');
      delta.ack(await delta.next('cluster'));
      clients.push(sotw, delta);
    }
  }
}

/** Moves Service i to a new endpoint address and returns what was encoded until the change settled. */
async function change(i: number, ip: string): Promise<string[]> {
  return encodedBy(`s${i}.yaml`, svc(i, ip));
}

/** Writes one file and returns what was encoded until the change settled. */
async function encodedBy(file: string, yaml: string): Promise<string[]> {
  const encoded: string[] = [];
  const encoder = shim.shim.cache.encoder;
  encoder.onEncode = (kind, name) => encoded.push(`${kind} ${name}`);
  const rebuilds = shim.shim.pipeline.rebuilds;
  shim.write(file, yaml);
  await waitFor('the change to be applied', () => shim.shim.pipeline.rebuilds > rebuilds);
  await waitFor('the change to be rolled out', () => shim.shim.rollout.holds().length === 0);
  encoder.onEncode = undefined;
  return encoded.sort();
}

describe('encode once', () => {
  it('a change to one Service encodes only its resources, the same with 4 or 44 streams connected', async () => {
    await connect(1, 'few');
    const few = await change(3, '10.2.3.2');
    expect(few).toEqual(
      [
        // Make-before-break, step 1, terminators: the new address beside the old one (the cluster, route,
        // connection manager and listener for the new address; the old address's route is rebuilt from
        // a tunnel object of its own, reads the same and is not encoded again)
        'cluster backend/enc/s3/7003/10.2.3.2',
        'extension terminate/15008/10.2.3.2',
        'listener terminate/15008/10.2.3.2',
        'route terminate/15008/10.2.3.2',
        // step 2, originators: the Service's endpoints (its cluster and listener are translated anew,
        // found equal to what was served, and not encoded again)
        'endpoint originate/enc/s3/7003',
        // step 3, terminators: the old address's listener goes (a removal encodes nothing); the target
        // tunnel's route reads as before and is not encoded again
      ].sort(),
    );
    await connect(10, 'many');
    expect(shim.shim.xds.streams.size + shim.shim.xds.deltaStreams.size).toBe(44);
    const many = await change(4, '10.2.4.2');
    expect(many).toEqual(few.map((x) => x.replaceAll('s3/7003', 's4/7004').replace('10.2.3.', '10.2.4.')).sort());
  });

  it('a logged Service that moves one of two endpoints encodes nothing for the address it kept', async () => {
    // Its connection managers are keyed by what they log, not by the tunnel objects a move replaces.
    expect(await encodedBy('logged.yaml', logged('10.3.0.3'))).toEqual(
      [
        'cluster backend/enc/logged/7100/10.3.0.3',
        'extension terminate/15008/10.3.0.3',
        'listener terminate/15008/10.3.0.3',
        'route terminate/15008/10.3.0.3',
        // make-before-break: the old and new addresses, then the new one alone
        'endpoint originate/enc/logged/7100',
        'endpoint originate/enc/logged/7100',
      ].sort(),
    );
  });

  it('nodes with the same view share one computed view', () => {
    // 44 streams, two roles, one view each.
    expect(shim.shim.cache.viewCount()).toBe(2);
  });
});
