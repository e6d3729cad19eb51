// SDS over ADS, asked for by hostile clients: a node gets its own identity's key and nothing else,
// whatever names it asks for; a node without a believed identity gets no key at all.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdsClient } from '../helpers/ads-client.js';
import { CsdsClient } from '../helpers/csds-client.js';
import { issue, testCa, type TestIdentity } from '../helpers/certs.js';
import { DeltaClient } from '../helpers/delta-client.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { waitFor } from '../helpers/wait.js';

const names = ['tunnel-shim/identity', 'tunnel-shim/trust-bundle', 'default', 'ROOTCA', 'tls/b', 'b-identity', '*'];
const meta = (identity?: string) => ({
  'tunnel-shim.io/role': 'originate',
  ...(identity ? { 'tunnel-shim.io/identity': identity } : {}),
});

describe('SDS over ADS never hands out another identity key', () => {
  let trusting: TestShim;
  let strict: TestShim;
  let a: TestIdentity;
  let b: TestIdentity;
  const clients: { close(): void }[] = [];

  beforeAll(async () => {
    const ca = await testCa();
    [a, b] = await Promise.all([issue(ca, 'tls/a'), issue(ca, 'tls/b')]);
    const files = { 'certs.yaml': [a.yaml, b.yaml].join('---\n') };
    trusting = await startShim(files, { tls: { insecureIdentities: true } });
    strict = await startShim(files);
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.all([trusting?.stop(), strict?.stop()]);
  });

  const keysIn = (objects: Record<string, unknown>[]) =>
    objects.map((o) => JSON.stringify(o)).filter((text) => text.includes('PRIVATE KEY'));

  it('state of the world: only the own key, under the generic name, whatever is asked', async () => {
    const client = new AdsClient(trusting.xdsAddress, { id: 'a', metadata: meta('tls/a') });
    clients.push(client);
    client.send('secret', { names });
    const r = await client.next('secret');
    expect(r.resources.map((x) => x.name).sort()).toEqual(['tunnel-shim/identity', 'tunnel-shim/trust-bundle']);
    const keys = keysIn(r.resources.map((x) => x.object));
    expect(keys).toHaveLength(1);
    expect(keys[0]).toContain(a.leaf.keyPem.split('\n')[1]);
    expect(keys[0]).not.toContain(b.leaf.keyPem.split('\n')[1]);
    client.ack(r, names);
    // CSDS (on the same port) names the Secrets a node holds, never their contents.
    const csds = new CsdsClient(trusting.xdsAddress);
    clients.push(csds);
    const dump = await waitFor('the node in CSDS', async () =>
      (await csds.fetch()).find(
        (c) => c.node.id === 'a' && c.generic_xds_configs.some((g) => g.name === 'tunnel-shim/identity'),
      ),
    );
    expect(JSON.stringify(dump)).not.toContain('PRIVATE KEY');
    expect(JSON.stringify(dump)).not.toContain(a.leaf.keyPem.split('\n')[1]);
  });

  it('delta: the same', async () => {
    const client = new DeltaClient(trusting.xdsAddress, {
      id: 'b',
      metadata: meta('spiffe://cluster.local/ns/tls/sa/b'),
    });
    clients.push(client);
    client.send('secret', { subscribe: names });
    const r = await waitFor('a delta secret response', () => client.responses.find((x) => x.kind === 'secret'));
    const keys = keysIn(r.resources.map((x) => x.object));
    expect(keys).toHaveLength(1);
    expect(keys[0]).toContain(b.leaf.keyPem.split('\n')[1]);
    expect(keys[0]).not.toContain(a.leaf.keyPem.split('\n')[1]);
  });

  it('no key without an identity, nor for a claim the shim does not believe', async () => {
    for (const [shim, identity] of [
      [trusting, undefined],
      [strict, 'tls/a'],
      [trusting, 'tls/nobody'],
    ] as const) {
      const client = new AdsClient(shim.xdsAddress, { id: `x-${identity}`, metadata: meta(identity) });
      clients.push(client);
      client.send('secret', { names });
      const got = await client.quiet(500);
      expect(keysIn(got.flatMap((r) => r.resources.map((x) => x.object)))).toEqual([]);
    }
  });

  it('refuses a malformed identity claim, naming the field', async () => {
    const client = new AdsClient(trusting.xdsAddress, { id: 'bad', metadata: meta('spiffe://evil.example/ns/x/sa/y') });
    clients.push(client);
    client.send('secret', { names });
    await waitFor('the stream to be refused', () => client.error);
    expect(client.error!.details).toContain('node.metadata["tunnel-shim.io/identity"]');
  });
});
