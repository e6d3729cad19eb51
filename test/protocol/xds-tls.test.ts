// xDS over mutual TLS: only clients with a certificate from the client CA get a stream, and the SPIFFE ID of
// that certificate binds the node (its id, its claimed identity, its Pod IP) and the view it is served.
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { createCa, identitySecret, issueIdentity, type IssuedCert } from '../../src/cli/dev-ca.js';
import { AdsClient, originateMeta, terminateMeta, type Connect } from '../helpers/ads-client.js';
import { CsdsClient } from '../helpers/csds-client.js';
import { DeltaClient } from '../helpers/delta-client.js';
import { serviceYaml } from '../helpers/objects.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { waitFor } from '../helpers/wait.js';
import { tlsConnect, tlsFixture, type TlsFixture } from '../helpers/xds-tls.js';

let tls: TlsFixture;
/** The identities whose Secrets (certificate and key) the shim serves over SDS. */
let keys: Record<'web' | 'db', IssuedCert>;
let shim: TestShim;
/** The shim's log lines (JSON), to wait for what it says about its certificate files. */
const logs: string[] = [];
const closers: { close(): void }[] = [];

const pod = (name: string, serviceAccount: string, ip: string) =>
  YAML.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'shop' },
    spec: { serviceAccountName: serviceAccount },
    status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
  });

const operator = 'spiffe://cluster.local/ns/ops/sa/oncall';

beforeAll(async () => {
  tls = await tlsFixture();
  const secret = async (serviceAccount: 'web' | 'db') => {
    const leaf = await issueIdentity(tls.ca, 'cluster.local', { namespace: 'shop', serviceAccount });
    const yaml = YAML.stringify(
      identitySecret('cluster.local', { namespace: 'shop', serviceAccount }, leaf, tls.ca.certPem),
    );
    return { leaf, yaml };
  };
  const [web, db] = await Promise.all([secret('web'), secret('db')]);
  keys = { web: web.leaf, db: db.leaf };
  shim = await startShim(
    {
      'db.yaml': serviceYaml({
        name: 'db',
        namespace: 'shop',
        clusterIP: '10.96.0.7',
        port: 5432,
        endpoints: [{ ip: '10.1.0.5', port: 5432 }],
      }),
      'pods.yaml': [pod('db-0', 'db', '10.1.0.5'), pod('web-0', 'web', '10.1.0.9')].join('---\n'),
      'secrets.yaml': [web.yaml, db.yaml].join('---\n'),
    },
    {
      xdsTls: { certFile: tls.certFile, keyFile: tls.keyFile, clientCaFile: tls.caFile, refreshMs: 100 },
      peers: { trustDomain: 'cluster.local', csdsIdentities: [operator] },
      logLevel: 'info',
      logTo: { write: (line: string) => void logs.push(line) },
    },
  );
});

afterEach(() => {
  for (const c of closers.splice(0)) c.close();
});

afterAll(async () => {
  await shim?.stop();
  tls?.remove();
});

async function as(identity: string): Promise<Connect> {
  return tlsConnect(tls.ca, (await tls.issue(identity)).leaf);
}

function sotw(id: string, connect: Connect, metadata: Record<string, string> = originateMeta): AdsClient {
  const c = new AdsClient(shim.xdsAddress, { id, metadata }, connect);
  closers.push(c);
  return c;
}

/** The status the stream ended with (bounded). */
async function refusal(c: { error?: grpc.ServiceError }): Promise<grpc.ServiceError> {
  return waitFor('the stream to be refused', () => c.error, 5000);
}

describe('xDS over mutual TLS: who may connect', () => {
  it('refuses a plaintext client', async () => {
    const c = sotw('web-0.shop', {});
    c.send('cluster');
    const err = await refusal(c);
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
    expect(c.responses).toEqual([]);
  });

  it('refuses a client without a certificate, and one whose certificate is from another CA', async () => {
    const none = sotw('web-0.shop', tlsConnect(tls.ca));
    none.send('cluster');
    const other = await createCa('cluster.local', { name: 'another CA' });
    const { leaf } = await tls.issue('shop/web', other, 'wrong-ca');
    const wrong = sotw('web-0.shop', tlsConnect(tls.ca, leaf));
    wrong.send('cluster');
    for (const c of [none, wrong]) {
      expect((await refusal(c)).code).toBe(grpc.status.UNAVAILABLE);
      expect(c.responses).toEqual([]);
    }
    // The same client with a certificate from the right CA is served: the certificate made the difference.
    const right = sotw('web-0.shop', await as('shop/web'));
    right.send('cluster');
    await right.next('cluster');
    expect([...shim.shim.xds.streams].map((s) => s.node.id)).toEqual(['web-0.shop']);
  });

  it("serves a client whose certificate matches its node, with the certificate's identity in its view", async () => {
    const c = sotw('web-0.shop', await as('shop/web'));
    c.send('cluster');
    const cds = await c.next('cluster');
    expect(cds.resources.map((r) => r.name)).toEqual(['originate/shop/db/5432']);
    const [stream] = shim.shim.xds.streams;
    expect(stream!.node.view.identity).toBe('spiffe://cluster.local/ns/shop/sa/web');
  });

  it('refuses with PERMISSION_DENIED a node id outside the certificate namespace, naming both', async () => {
    const c = sotw('web-0.payments', await as('shop/web'));
    c.send('cluster');
    const err = await refusal(c);
    expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(err.details).toBe(
      'node "web-0.payments": a node of spiffe://cluster.local/ns/shop/sa/web ' +
        'must be named NAME.shop (optionally /SUFFIX)',
    );
    expect(c.responses).toEqual([]);
  });

  it("refuses a node id naming a Pod of another service account, and another identity's Pod IP", async () => {
    const byName = sotw('db-0.shop/terminate', await as('shop/web'), terminateMeta);
    byName.send('cluster');
    const byIp = sotw('web-1.shop', await as('shop/web'), {
      ...terminateMeta,
      'tunnel-shim.io/listen-address': '10.1.0.5',
    });
    byIp.send('cluster');
    expect((await refusal(byName)).details).toBe(
      'node "db-0.shop/terminate": Pod shop/db-0 runs as service account db, ' +
        'the certificate is spiffe://cluster.local/ns/shop/sa/web',
    );
    const err = await refusal(byIp);
    expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(err.details).toBe(
      'node "web-1.shop": listen address 10.1.0.5 is Pod shop/db-0\'s (service account db), ' +
        'the certificate is spiffe://cluster.local/ns/shop/sa/web',
    );
  });

  it("serves a terminator bound to its own Pod's IP", async () => {
    const c = sotw('db-0.shop/terminate', await as('shop/db'), {
      ...terminateMeta,
      'tunnel-shim.io/listen-address': '10.1.0.5',
    });
    c.send('listener');
    const lds = await c.next('listener');
    expect(lds.resources.map((r) => r.name)).toEqual(['terminate/15008/10.1.0.5']);
  });

  it('refuses a node claiming an identity not its certificate, and a certificate of another trust domain', async () => {
    const claim = sotw('web-0.shop', await as('shop/web'), { ...originateMeta, 'tunnel-shim.io/identity': 'shop/db' });
    claim.send('cluster');
    const err = await refusal(claim);
    expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(err.details).toBe(
      'node "web-0.shop": claims identity "shop/db" ' +
        'but its client certificate is spiffe://cluster.local/ns/shop/sa/web',
    );
    const foreign = await issueIdentity(tls.ca, 'example.org', { namespace: 'shop', serviceAccount: 'web' });
    const c = sotw('web-0.shop', tlsConnect(tls.ca, foreign));
    c.send('cluster');
    expect((await refusal(c)).details).toMatch(
      /^client certificate [0-9A-F]+: URI SAN "spiffe:\/\/example.org\/ns\/shop\/sa\/web" is not a SPIFFE ID spiffe:/,
    );
  });

  it('binds delta streams the same way', async () => {
    const denied = new DeltaClient(
      shim.xdsAddress,
      { id: 'web-0.payments', metadata: originateMeta },
      await as('shop/web'),
    );
    const served = new DeltaClient(
      shim.xdsAddress,
      { id: 'web-0.shop', metadata: originateMeta },
      await as('shop/web'),
    );
    const plain = new DeltaClient(shim.xdsAddress, { id: 'web-0.shop', metadata: originateMeta });
    closers.push(denied, served, plain);
    for (const c of [denied, served, plain]) c.send('cluster');
    expect((await refusal(denied)).code).toBe(grpc.status.PERMISSION_DENIED);
    expect((await refusal(plain)).code).toBe(grpc.status.UNAVAILABLE);
    const cds = await served.nextSince('cluster', 0);
    expect(cds.resources.map((r) => r.name)).toEqual(['originate/shop/db/5432']);
    const [stream] = shim.shim.xds.deltaStreams;
    expect(stream!.node.view.identity).toBe('spiffe://cluster.local/ns/shop/sa/web');
  });
});

describe('keys over an authenticated stream', () => {
  const names = [
    'tunnel-shim/identity',
    'tunnel-shim/trust-bundle',
    'default',
    'ROOTCA',
    'shop/db',
    'db-identity',
    '*',
  ];
  const keyLine = (cert: IssuedCert) => cert.keyPem.split('\n')[1]!;
  const keysIn = (objects: object[]) =>
    objects.map((o) => JSON.stringify(o)).filter((text) => text.includes('PRIVATE KEY'));

  it("a client never receives another identity's key, whatever it asks for (SotW and delta)", async () => {
    const sotwClient = sotw('web-0.shop', await as('shop/web'));
    sotwClient.send('secret', { names });
    const r = await sotwClient.next('secret');
    const got = keysIn(r.resources.map((x) => x.object));
    expect(got).toHaveLength(1);
    expect(got[0]).toContain(keyLine(keys.web));
    expect(got[0]).not.toContain(keyLine(keys.db));

    const delta = new DeltaClient(shim.xdsAddress, { id: 'web-1.shop', metadata: originateMeta }, await as('shop/web'));
    closers.push(delta);
    delta.send('secret', { subscribe: names });
    const d = await delta.nextSince('secret', 0);
    const deltaKeys = keysIn(d.resources.map((x) => x.object));
    expect(deltaKeys).toHaveLength(1);
    expect(deltaKeys[0]).toContain(keyLine(keys.web));
  });

  it("the db identity's key goes to a db stream only", async () => {
    const c = sotw('db-0.shop/terminate', await as('shop/db'), terminateMeta);
    c.send('secret', { names });
    const got = keysIn((await c.next('secret')).resources.map((x) => x.object));
    expect(got).toHaveLength(1);
    expect(got[0]).toContain(keyLine(keys.db));
  });
});

describe('CSDS over mutual TLS', () => {
  it('answers only the identities serve --csds-identities lists', async () => {
    const c = sotw('web-0.shop', await as('shop/web'));
    c.send('cluster');
    await c.next('cluster');
    const plain = new CsdsClient(shim.xdsAddress);
    const workload = new CsdsClient(shim.xdsAddress, await as('shop/web'));
    const oncall = new CsdsClient(shim.xdsAddress, await as('ops/oncall'));
    closers.push(plain, workload, oncall);
    await expect(plain.fetch()).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    await expect(workload.fetch()).rejects.toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
      details:
        'CSDS: spiffe://cluster.local/ns/shop/sa/web may not read node status (serve --csds-identities lists who may)',
    });
    await expect(workload.stream([{}])).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    const configs = await oncall.fetch();
    expect(configs.map((config) => config.node.id)).toEqual(['web-0.shop']);
    expect((await oncall.stream([{}]))[0]!.map((config) => config.node.id)).toEqual(['web-0.shop']);
  });
});

describe("the shim's certificate rotates without a restart", () => {
  it('new connections see the new certificate; open streams keep going; a mismatched pair is not loaded', async () => {
    const seen: string[] = [];
    const { leaf } = await tls.issue('shop/web');
    const before = new AdsClient(
      shim.xdsAddress,
      { id: 'web-0.shop', metadata: originateMeta },
      tlsConnect(tls.ca, leaf, seen),
    );
    closers.push(before);
    before.autoAck = true;
    before.send('cluster');
    await before.next('cluster');
    const oldSerial = seen[0]!;

    /** The serial of the certificate a new connection is shown (the connection must be served). */
    const connectAnew = async () => {
      const served: string[] = [];
      const c = new AdsClient(
        shim.xdsAddress,
        { id: 'web-1.shop', metadata: originateMeta },
        tlsConnect(tls.ca, leaf, served),
      );
      try {
        c.send('cluster');
        await c.next('cluster');
        return served[0]!.toLowerCase();
      } finally {
        c.close();
      }
    };

    // Half a rotation (the new key beside the old certificate) is refused and the old pair kept.
    const next = await tls.issueShim();
    tls.replace(tls.keyFile, next.keyPem);
    await waitFor('the shim to refuse the mismatched pair', () =>
      logs.some((line) => line.includes('xDS TLS files not reloaded; serving the last good certificate')),
    );
    expect(await connectAnew()).toBe(oldSerial.toLowerCase());

    tls.replace(tls.certFile, next.certPem);
    await waitFor(
      'a new connection to present the new certificate',
      async () => (await connectAnew()) === next.cert.serialNumber.toLowerCase(),
    );

    // The stream opened before the rotation is still served: a new Service reaches it.
    const index = before.responses.length;
    shim.write(
      'cache.yaml',
      serviceYaml({ name: 'cache', namespace: 'shop', clusterIP: '10.96.0.8', port: 6379, endpoints: [] }),
    );
    const cds = await before.nextSince('cluster', index);
    expect(cds.resources.map((r) => r.name)).toContain('originate/shop/cache/6379');
    expect(before.error).toBeUndefined();
    expect(seen).toEqual([oldSerial]);
  });

  it('a CA rollover: clients of the new CA are served once the client CA file holds both roots', async () => {
    const next = await createCa('cluster.local', { name: 'next CA' });
    const { leaf } = await tls.issue('shop/web', next, 'next-ca');
    const early = sotw('web-0.shop', tlsConnect(tls.ca, leaf));
    early.send('cluster');
    expect((await refusal(early)).code).toBe(grpc.status.UNAVAILABLE);

    const reloads = logs.filter((line) => line.includes('xDS TLS certificate reloaded')).length;
    tls.replace(tls.caFile, `${tls.ca.certPem}\n${next.certPem}\n`);
    await waitFor('the shim to read the new client CA file', () =>
      logs.filter((line) => line.includes('xDS TLS certificate reloaded')).length > reloads ? true : undefined,
    );
    const late = sotw('web-0.shop', tlsConnect(tls.ca, leaf));
    late.send('cluster');
    expect((await late.next('cluster')).resources.map((r) => r.name)).toContain('originate/shop/db/5432');
    const old = sotw('web-1.shop', await as('shop/web'));
    old.send('cluster');
    await old.next('cluster');
  });
});
