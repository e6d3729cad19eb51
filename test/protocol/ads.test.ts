// The state-of-the-world ADS protocol, checked with a real gRPC client acting like an Envoy.
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { nackRetry } from '../../src/xds/base-stream.js';
import { AdsClient, originateMeta, terminateMeta } from '../helpers/ads-client.js';
import { serviceYaml } from '../helpers/objects.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { waitFor } from '../helpers/wait.js';
import { nodeStatus as getNodeStatus } from '../helpers/nodes.js';

let shim: TestShim;
const clients: AdsClient[] = [];

function client(id: string, metadata: Record<string, string> = originateMeta): AdsClient {
  const c = new AdsClient(shim.xdsAddress, { id, metadata });
  clients.push(c);
  return c;
}

const alpha = (endpoints = [{ ip: '10.1.0.1', port: 8080 }]) =>
  serviceYaml({ name: 'alpha', namespace: 'p', clusterIP: '10.96.1.1', port: 7001, endpoints });
const beta = serviceYaml({
  name: 'beta',
  namespace: 'p',
  clusterIP: '10.96.1.2',
  port: 7002,
  endpoints: [{ ip: '10.1.0.2', port: 8080 }],
});

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

describe('ADS state of the world', () => {
  it('answers each type with a content version and a fresh nonce, and stays quiet after an ACK', async () => {
    const c = client('o-basic');
    c.send('cluster');
    const cds = await c.next('cluster');
    expect(cds.type_url).toBe('type.googleapis.com/envoy.config.cluster.v3.Cluster');
    expect(cds.version_info).toMatch(/^[0-9a-f]{16}$/);
    expect(cds.nonce).not.toBe('');
    expect(cds.resources.map((r) => r.name)).toEqual(['originate/p/alpha/7001', 'originate/p/beta/7002']);
    c.ack(cds);
    c.send('listener');
    const lds = await c.next('listener');
    expect(lds.nonce).not.toBe(cds.nonce);
    c.ack(lds);
    expect(await c.quiet()).toEqual([]);
    const status = await waitFor('ACKs recorded', async () => {
      const s = await nodeStatus('o-basic');
      return s?.types.listener.status === 'SYNCED' && s?.types.cluster.status === 'SYNCED' ? s : undefined;
    });
    expect(status.types.cluster.ackedVersion).toBe(cds.version_info);
  });

  it('gives each role only its own resources', async () => {
    const t = client('t-role', terminateMeta);
    t.send('cluster');
    const cds = await t.next('cluster');
    expect(cds.resources.every((r) => r.name.startsWith('backend/'))).toBe(true);
    t.ack(cds);
    t.send('listener');
    const lds = await t.next('listener');
    expect(lds.resources.map((r) => r.name)).toEqual(['terminate/15008/10.1.0.1', 'terminate/15008/10.1.0.2']);
  });

  it('ignores a request with a stale nonce', async () => {
    const c = client('o-stale');
    c.send('cluster');
    const first = await c.next('cluster');
    c.ack(first);
    c.send('cluster', { nonce: 'not-the-latest', version: first.version_info });
    expect(await c.quiet()).toEqual([]);
    expect((await nodeStatus('o-stale')).types.cluster.status).toBe('SYNCED');
  });

  it('records a NACK, shows it in /debug/nodes and does not resend the rejected config before the retry', async () => {
    // The retry after backoff has its own test (e2e/nack-retry.test.ts): not within this one.
    const firstRetry = nackRetry.firstMs;
    nackRetry.firstMs = 60_000;
    onTestFinished(() => void (nackRetry.firstMs = firstRetry));
    const c = client('o-nack');
    c.send('listener');
    const lds = await c.next('listener');
    c.send('listener', { version: '', nonce: lds.nonce, error: 'listener rejected: test says no' });
    expect(await c.quiet(400)).toEqual([]);
    const s = await waitFor('NACK recorded', async () => {
      const n = await nodeStatus('o-nack');
      return n?.types.listener.status === 'NACKED' ? n : undefined;
    });
    expect(s.types.listener.lastNack.message).toBe('listener rejected: test says no');
    expect(s.types.listener.ackedVersion).toBeNull();
    // New content is sent again: only the rejected version is withheld.
    shim.write('gamma.yaml', serviceYaml({ name: 'gamma', namespace: 'p', clusterIP: '10.96.1.3', port: 7003 }));
    const next = await c.next('listener');
    expect(next.version_info).not.toBe(lds.version_info);
    shim.remove('gamma.yaml');
    await c.next('listener');
  });

  it('sends endpoints only for what changed, and leaves unchanged types alone', async () => {
    const c = client('o-eds');
    c.send('cluster');
    c.ack(await c.next('cluster'));
    c.send('listener');
    c.ack(await c.next('listener'));
    const names = ['originate/p/alpha/7001', 'originate/p/beta/7002'];
    c.send('endpoint', { names });
    const eds = await c.next('endpoint');
    expect(eds.resources.map((r) => r.name)).toEqual(names);
    c.ack(eds, names);
    expect(await c.quiet()).toEqual([]);
    const mark = c.responses.length;
    shim.write(
      'alpha.yaml',
      alpha([
        { ip: '10.1.0.1', port: 8080 },
        { ip: '10.1.0.9', port: 8080 },
      ]),
    );
    const changed = await c.nextSince('endpoint', mark);
    expect(changed.resources.map((r) => r.name)).toEqual(['originate/p/alpha/7001']);
    c.ack(changed, names);
    await c.quiet(200);
    // Only endpoints changed: no cluster or listener was resent.
    expect(c.responses.slice(mark).map((r) => r.kind)).toEqual(['endpoint']);
    shim.write('alpha.yaml', alpha());
    c.ack(await c.nextSince('endpoint', mark + 1), names);
  });

  it('sends a name asked for before it exists as soon as it appears, clusters before listeners', async () => {
    const c = client('o-later');
    c.send('cluster');
    c.ack(await c.next('cluster'));
    c.send('listener');
    c.ack(await c.next('listener'));
    const wanted = 'originate/p/delta/7004';
    c.send('endpoint', { names: [wanted] });
    expect(await c.quiet()).toEqual([]);
    const mark = c.responses.length;
    shim.write(
      'delta.yaml',
      serviceYaml({
        name: 'delta',
        namespace: 'p',
        clusterIP: '10.96.1.4',
        port: 7004,
        endpoints: [{ ip: '10.1.0.4', port: 80 }],
      }),
    );
    const eds = await c.nextSince('endpoint', mark);
    expect(eds.resources.map((r) => r.name)).toEqual([wanted]);
    await c.nextSince('listener', mark);
    const order = c.responses.slice(mark).map((r) => r.kind);
    expect(order.indexOf('cluster')).toBeLessThan(order.indexOf('listener'));
    expect(order.indexOf('endpoint')).toBeLessThan(order.indexOf('listener'));
    const beforeRemoval = c.responses.length;
    shim.remove('delta.yaml');
    await c.nextSince('cluster', beforeRemoval);
  });

  it('does not resend to a reconnecting client that already has the current version', async () => {
    const c = client('o-reconnect');
    c.send('cluster');
    const cds = await c.next('cluster');
    c.close();
    const again = client('o-reconnect');
    again.send('cluster', { version: cds.version_info });
    expect(await again.quiet()).toEqual([]);
    const s = await waitFor('reconnected node', () => nodeStatus('o-reconnect'));
    expect(s.types.cluster.status).toBe('SYNCED');
  });

  it('closes the stream of a node that does not say its role, naming the field', async () => {
    const c = client('no-role', {});
    c.send('cluster');
    const err = await waitFor('stream error', () => c.error);
    expect(err.code).toBe(3);
    expect(err.details).toContain('tunnel-shim.io/role');
  });
});
