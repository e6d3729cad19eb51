// The delta (incremental) ADS protocol, one test per rule, with a real gRPC client acting like an Envoy.
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { nackRetry } from '../../src/xds/base-stream.js';
import { originateMeta } from '../helpers/ads-client.js';
import { DeltaClient } from '../helpers/delta-client.js';
import { serviceYaml } from '../helpers/objects.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { waitFor } from '../helpers/wait.js';
import { nodeStatus as getNodeStatus } from '../helpers/nodes.js';

let shim: TestShim;
const clients: DeltaClient[] = [];

function client(id: string, metadata: Record<string, string> = originateMeta): DeltaClient {
  const c = new DeltaClient(shim.xdsAddress, { id, metadata });
  clients.push(c);
  return c;
}

const alpha = (endpoints = [{ ip: '10.1.0.1', port: 8080 }]) =>
  serviceYaml({ name: 'alpha', namespace: 'd', clusterIP: '10.96.2.1', port: 7001, endpoints });
const beta = serviceYaml({
  name: 'beta',
  namespace: 'd',
  clusterIP: '10.96.2.2',
  port: 7002,
  endpoints: [{ ip: '10.1.0.2', port: 8080 }],
});
const A = 'originate/d/alpha/7001';
const B = 'originate/d/beta/7002';

beforeAll(async () => {
  shim = await startShim({ 'alpha.yaml': alpha(), 'beta.yaml': beta });
});

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

afterAll(async () => {
  await shim.stop();
});

const nodeStatus = async (id: string): Promise<any> => getNodeStatus(shim.adminUrl, id);

describe('ADS delta', () => {
  it(
    'wildcard CDS and LDS: an empty first request gets every resource, each with a version, and a fresh ' + 'nonce',
    async () => {
      const c = client('d-wild');
      c.send('cluster');
      const cds = await c.next('cluster');
      expect(cds.resources.map((r) => r.name)).toEqual([A, B]);
      expect(cds.resources.every((r) => /^[0-9a-f]{16}$/.test(r.version))).toBe(true);
      expect(cds.nonce).not.toBe('');
      c.ack(cds);
      c.send('listener', { subscribe: ['*'] });
      const lds = await c.next('listener');
      expect(lds.resources.map((r) => r.name)).toEqual([A, B]);
      expect(lds.nonce).not.toBe(cds.nonce);
      c.ack(lds);
      expect(await c.quiet()).toEqual([]);
      const s = await waitFor('ACKs recorded', async () => {
        const n = await nodeStatus('d-wild');
        return n?.types.cluster.status === 'SYNCED' && n?.types.listener.status === 'SYNCED' ? n : undefined;
      });
      expect(s.protocol).toBe('delta');
    },
  );

  it('subscribes and unsubscribes EDS by name, sending only the named resources', async () => {
    const c = client('d-sub');
    c.send('endpoint', { subscribe: [A] });
    const first = await c.next('endpoint');
    expect(first.resources.map((r) => r.name)).toEqual([A]);
    c.ack(first, { subscribe: [B] });
    const second = await c.next('endpoint');
    expect(second.resources.map((r) => r.name)).toEqual([B]);
    c.ack(second);
    c.send('endpoint', { unsubscribe: [A] });
    expect(await c.quiet()).toEqual([]);
    // A is no longer subscribed: its change is not sent.
    shim.write(
      'alpha.yaml',
      alpha([
        { ip: '10.1.0.1', port: 8080 },
        { ip: '10.1.0.7', port: 8080 },
      ]),
    );
    expect(await c.quiet(500)).toEqual([]);
    shim.write('alpha.yaml', alpha());
    await c.quiet(300);
  });

  it('sends only what changed: one endpoint change is one resource, unchanged types get nothing', async () => {
    const c = client('d-change');
    c.send('cluster');
    c.ack(await c.next('cluster'));
    c.send('endpoint', { subscribe: [A, B] });
    c.ack(await c.next('endpoint'));
    const mark = c.responses.length;
    shim.write(
      'alpha.yaml',
      alpha([
        { ip: '10.1.0.1', port: 8080 },
        { ip: '10.1.0.9', port: 8080 },
      ]),
    );
    const eds = await c.nextSince('endpoint', mark);
    expect(eds.resources.map((r) => r.name)).toEqual([A]);
    expect(eds.removed).toEqual([]);
    c.ack(eds);
    await c.quiet(200);
    expect(c.responses.slice(mark).map((r) => r.kind)).toEqual(['endpoint']);
    shim.write('alpha.yaml', alpha());
    c.ack(await c.nextSince('endpoint', mark + 1));
  });

  it('reports removed resources in removed_resources', async () => {
    shim.write('gamma.yaml', serviceYaml({ name: 'gamma', namespace: 'd', clusterIP: '10.96.2.3', port: 7003 }));
    const G = 'originate/d/gamma/7003';
    const c = client('d-removed');
    c.send('cluster');
    const cds = await waitFor('gamma to be served', async () => {
      const r = c.responses.find((x) => x.kind === 'cluster' && x.resources.some((y) => y.name === G));
      if (r) return r;
      const latest = c.responses.filter((x) => x.kind === 'cluster').at(-1);
      if (latest) c.ack(latest);
      return undefined;
    });
    c.ack(cds);
    const mark = c.responses.length;
    shim.remove('gamma.yaml');
    const next = await c.nextSince('cluster', mark);
    expect(next.removed).toEqual([G]);
    expect(next.resources).toEqual([]);
  });

  it('tells a client that a subscribed name does not exist, and sends it when it appears', async () => {
    const D = 'originate/d/delta/7004';
    const c = client('d-missing');
    c.send('endpoint', { subscribe: [D] });
    const first = await c.next('endpoint');
    expect(first.removed).toEqual([D]);
    expect(first.resources).toEqual([]);
    c.ack(first);
    expect(await c.quiet()).toEqual([]);
    const mark = c.responses.length;
    shim.write(
      'delta.yaml',
      serviceYaml({
        name: 'delta',
        namespace: 'd',
        clusterIP: '10.96.2.4',
        port: 7004,
        endpoints: [{ ip: '10.1.0.4', port: 80 }],
      }),
    );
    const later = await c.nextSince('endpoint', mark);
    expect(later.resources.map((r) => r.name)).toEqual([D]);
    c.ack(later);
    const gone = c.responses.length;
    shim.remove('delta.yaml');
    expect((await c.nextSince('endpoint', gone)).removed).toEqual([D]);
  });

  it('on reconnect, initial_resource_versions mean nothing unchanged is resent, and only changes are', async () => {
    const c = client('d-reconnect');
    c.send('cluster');
    const cds = await c.next('cluster');
    c.ack(cds);
    c.close();
    const held = Object.fromEntries(cds.resources.map((r) => [r.name, r.version]));
    const again = client('d-reconnect');
    again.send('cluster', { initial: held });
    const answer = await again.next('cluster');
    expect(answer.resources).toEqual([]);
    expect(answer.removed).toEqual([]);
    again.ack(answer);
    const s = await waitFor('reconnected node synced', async () =>
      (await nodeStatus('d-reconnect'))?.types.cluster.status === 'SYNCED' ? true : undefined,
    );
    expect(s).toBe(true);
    // A client that holds a stale version of one resource and one that no longer exists.
    const third = client('d-reconnect-stale');
    third.send('cluster', { initial: { [A]: 'old', [B]: held[B]!, 'originate/d/gone/1': 'x' } });
    const diff = await third.next('cluster');
    expect(diff.resources.map((r) => r.name)).toEqual([A]);
    expect(diff.removed).toEqual(['originate/d/gone/1']);
  });

  it('ignores a stale nonce, and does not resend content the client NACKed before the retry', async () => {
    // The retry after backoff has its own test (e2e/nack-retry.test.ts): not within this one.
    const firstRetry = nackRetry.firstMs;
    nackRetry.firstMs = 60_000;
    onTestFinished(() => void (nackRetry.firstMs = firstRetry));
    const c = client('d-nack');
    c.send('cluster');
    const cds = await c.next('cluster');
    c.send('cluster', { nonce: 'not-ours' });
    expect(await c.quiet()).toEqual([]);
    c.send('cluster', { nonce: cds.nonce, error: 'rejected on purpose' });
    expect(await c.quiet()).toEqual([]);
    const s = await waitFor('NACK recorded', async () => {
      const n = await nodeStatus('d-nack');
      return n?.types.cluster.status === 'NACKED' ? n : undefined;
    });
    expect(s.types.cluster.lastNack.message).toBe('rejected on purpose');
    // The next change is sent.
    const mark = c.responses.length;
    shim.write('eps.yaml', serviceYaml({ name: 'eps', namespace: 'd', clusterIP: '10.96.2.5', port: 7005 }));
    const next = await c.nextSince('cluster', mark);
    expect(next.resources.map((r) => r.name)).toEqual(['originate/d/eps/7005']);
    shim.remove('eps.yaml');
  });
});
