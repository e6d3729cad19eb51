// The core promise, through two real Envoys: bytes cross an HTTP/2 CONNECT tunnel that the shim
// configured over ADS, pooled, exact to the chosen endpoint, refusing unknown authorities, and
// surviving live changes, bad input and a restart of the shim. One body, run with Envoys speaking
// state-of-the-world ADS and with Envoys speaking delta (incremental) ADS.
import http2 from 'node:http2';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEnvoy, type EnvoyProcess } from '../helpers/envoy.js';
import { Client, freePort, roundTrip, startEcho, type EchoServer } from '../helpers/net.js';
import { serviceYaml } from '../helpers/objects.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { waitFor } from '../helpers/wait.js';

describe.each(['sotw', 'delta'] as const)('a tunnel through two real Envoys (%s xDS)', (mode) => {
  const delta = mode === 'delta';
  let shim: TestShim;
  let originator: EnvoyProcess;
  let terminator: EnvoyProcess;
  const backends: EchoServer[] = [];
  let tunnelPort: number;
  let echoPort: number;
  let poolPort: number;

  const authority = (name: string, port: number) => `${name}.e2e.svc.cluster.local:${port}`;

  async function nodesOf(
    adminUrl: string,
  ): Promise<{ id: string; types: Record<string, { status: string; lastNack: unknown }> }[]> {
    return (await fetch(`${adminUrl}/debug/nodes`)).json() as never;
  }

  async function synced(ids: string[]): Promise<boolean> {
    const nodes = await nodesOf(shim.adminUrl);
    return ids.every((id) => {
      const n = nodes.find((x) => x.id === id);
      return n && Object.values(n.types).length >= 2 && Object.values(n.types).every((t) => t.status === 'SYNCED');
    });
  }

  async function refused(port: number): Promise<boolean> {
    return new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(false)));
      s.once('error', () => resolve(true));
    });
  }

  beforeAll(async () => {
    tunnelPort = await freePort();
    const backendPort = await freePort('127.0.0.2');
    // Two backends on one port at two addresses: the sidecar placement must deliver each tunnel to
    // exactly the address the originator chose.
    backends.push(await startEcho('127.0.0.2', backendPort, 'backend-127.0.0.2'));
    backends.push(await startEcho('127.0.0.3', backendPort, 'backend-127.0.0.3'));
    echoPort = await freePort();
    poolPort = await freePort();
    const annotations = { 'tunnel-shim.io/tunnel-port': String(tunnelPort) };
    shim = await startShim({
      'echo.yaml': serviceYaml({
        name: 'echo',
        namespace: 'e2e',
        clusterIP: '10.96.0.10',
        port: echoPort,
        annotations,
        endpoints: [
          { ip: '127.0.0.2', port: backendPort },
          { ip: '127.0.0.3', port: backendPort },
        ],
      }),
      'pool.yaml': serviceYaml({
        name: 'pool',
        namespace: 'e2e',
        clusterIP: '10.96.0.11',
        port: poolPort,
        annotations,
        endpoints: [{ ip: '127.0.0.2', port: backendPort }],
      }),
    });
    [terminator, originator] = await Promise.all([
      startEnvoy({ role: 'terminate', nodeId: 'terminator', xdsAddress: shim.xdsAddress, delta }),
      startEnvoy({
        role: 'originate',
        nodeId: 'originator',
        xdsAddress: shim.xdsAddress,
        listenAddress: '127.0.0.1',
        concurrency: 2,
        delta,
      }),
    ]);
    await waitFor('both Envoys synced', () => synced(['terminator', 'originator']));
    await waitFor('the tunnel to work', () => roundTrip(echoPort).then(() => true), 20_000, 200);
  });

  afterAll(async () => {
    await Promise.all([originator?.stop(), terminator?.stop()]);
    await shim?.stop();
    await Promise.all(backends.map((b) => b.close()));
  });

  it('echoes bytes through HTTP/2 CONNECT, logged by the terminator as CONNECT 200', async () => {
    const received = await roundTrip(echoPort, 'hello through the tunnel\n');
    expect(received).toMatch(/^backend-127\.0\.0\.[23]\nhello through the tunnel\n$/);
    const entry = await waitFor('terminator access log', () =>
      terminator.accessLog().find((e) => e.authority === authority('echo', echoPort) && e.response_code === 200),
    );
    expect(entry).toMatchObject({ method: 'CONNECT', protocol: 'HTTP/2', role: 'terminate' });
  });

  it('delivers each tunnel to exactly the endpoint the originator chose (sidecar placement)', async () => {
    const seen = new Map<string, number>();
    for (let i = 0; i < 20; i++) {
      const name = (await roundTrip(echoPort)).split('\n')[0]!;
      seen.set(name, (seen.get(name) ?? 0) + 1);
    }
    expect([...seen.keys()].sort()).toEqual(['backend-127.0.0.2', 'backend-127.0.0.3']);
    const entries = await waitFor('terminator log lines', () => {
      const lines = terminator.accessLog().filter((e) => e.authority === authority('echo', echoPort));
      return lines.length >= 21 ? lines : undefined;
    });
    for (const e of entries) {
      // The terminator's upstream is the very address the tunnel arrived on: no second balancing.
      expect(String(e.upstream_host).split(':')[0]).toBe(String(e.downstream_local).split(':')[0]);
    }
  });

  it('pools 20 sequential connections into at most 2 upstream HTTP/2 connections (2 workers)', async () => {
    const cluster = `cluster.originate/e2e/pool/${poolPort}`;
    const before = {
      cx: await originator.stat(`${cluster}.upstream_cx_total`),
      rq: await originator.stat(`${cluster}.upstream_rq_total`),
    };
    for (let i = 0; i < 20; i++) await roundTrip(poolPort);
    const after = {
      cx: await originator.stat(`${cluster}.upstream_cx_total`),
      rq: await originator.stat(`${cluster}.upstream_rq_total`),
    };
    expect(after.rq - before.rq).toBe(20);
    expect(after.cx).toBeLessThanOrEqual(2);
    // Envoy flushes access logs about once a second.
    const connect = await waitFor('20 pool log lines', () => {
      const lines = terminator.accessLog().filter((e) => e.authority === authority('pool', poolPort));
      return lines.length >= 20 ? lines : undefined;
    });
    expect(connect.length).toBe(20);
    expect(new Set(connect.map((e) => e.connection_id)).size).toBeLessThanOrEqual(2);
  });

  it('refuses a CONNECT to an authority it was not told about, opening no upstream connection', async () => {
    const upstreamBefore = await terminator.stat('cluster_manager.upstream_cx_total');
    const statusH2 = await new Promise<number>((resolve, reject) => {
      const client = http2.connect(`http://127.0.0.2:${tunnelPort}`);
      client.on('error', reject);
      const req = client.request({ ':method': 'CONNECT', ':authority': 'evil.example.com:443' });
      req.on('response', (h) => (resolve(Number(h[':status'])), client.close()));
      req.on('error', reject);
    });
    expect(statusH2).toBe(404);
    const statusH1 = await new Promise<string>((resolve, reject) => {
      const s = net.connect(tunnelPort, '127.0.0.2', () =>
        s.write('CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n'),
      );
      s.once('data', (d) => (resolve(d.toString().split('\r\n')[0]!), s.destroy()));
      s.once('error', reject);
    });
    expect(statusH1).toBe('HTTP/1.1 404 Not Found');
    let upstream = 0;
    for (const [name, value] of await terminator.stats())
      if (name.startsWith('cluster.backend/') && name.endsWith('.upstream_cx_total')) upstream += value;
    expect(upstream).toBeGreaterThan(0);
    expect(await terminator.stat('cluster_manager.upstream_cx_total')).toBe(upstreamBefore);
  });

  it('adds and removes a listener live, without touching an open tunnel on another Service', async () => {
    const open = await Client.connect(echoPort);
    await open.echo('before\n');
    const modifiedBefore = await originator.stat('listener_manager.listener_modified');
    const addedBefore = await originator.stat('listener_manager.listener_added');
    const newPort = await freePort();
    shim.write(
      'added.yaml',
      serviceYaml({
        name: 'added',
        namespace: 'e2e',
        clusterIP: '10.96.0.12',
        port: newPort,
        annotations: { 'tunnel-shim.io/tunnel-port': String(tunnelPort) },
        endpoints: [{ ip: '127.0.0.2', port: backends[0]!.port }],
      }),
    );
    await waitFor('the new Service to tunnel', () => roundTrip(newPort).then(() => true), 15_000, 100);
    await open.echo('during\n');
    expect(await originator.stat('listener_manager.listener_added')).toBe(addedBefore + 1);
    expect(await originator.stat('listener_manager.listener_modified')).toBe(modifiedBefore);
    const removedBefore = await originator.stat('listener_manager.listener_removed');
    shim.remove('added.yaml');
    await waitFor('the removed Service to stop listening', () => refused(newPort), 15_000, 100);
    await waitFor(
      'the removed listener to finish draining',
      async () =>
        (await originator.stat('listener_manager.listener_removed')) === removedBefore + 1 &&
        (await originator.stat('listener_manager.total_listeners_draining')) === 0,
    );
    await open.echo('after\n');
    expect(await originator.stat('listener_manager.listener_modified')).toBe(modifiedBefore);
    open.close();
  });

  it('reports bad input by file, line, object and field, and keeps serving everything else', async () => {
    const good = await roundTrip(poolPort);
    expect(good).toContain('ping-');
    shim.write('broken.yaml', 'apiVersion: v1\nkind: Service\nmetadata: {name: broken\n');
    shim.write(
      'bad.yaml',
      [
        serviceYaml({
          name: 'bad-mode',
          namespace: 'e2e',
          clusterIP: '10.96.0.20',
          port: 7001,
          annotations: { 'tunnel-shim.io/tunnel': 'h3' },
        }),
        serviceYaml({ name: 'bad-port', namespace: 'e2e', clusterIP: '10.96.0.21', port: 70000 }),
        serviceYaml({ name: 'dup-address', namespace: 'e2e', clusterIP: '10.96.0.10', port: echoPort }),
      ].join('---\n'),
    );
    const texts = await waitFor('diagnostics for every bad object', async () => {
      const list = (await (await fetch(`${shim.adminUrl}/debug/diagnostics`)).json()) as { text: string }[];
      const t = list.map((d) => d.text);
      return t.some((x) => x.includes('bad-mode')) &&
        t.some((x) => x.includes('broken.yaml')) &&
        t.some((x) => x.includes('dup-address'))
        ? t
        : undefined;
    });
    const find = (needle: string) => texts.find((t) => t.includes(needle)) ?? '';
    expect(find('broken.yaml')).toMatch(/broken\.yaml:\d+/);
    expect(find('bad-mode')).toMatch(
      /bad\.yaml:\d+: Service e2e\/bad-mode: metadata\.annotations\["tunnel-shim\.io\/tunnel"\]: .*mode "h3"/,
    );
    expect(find('bad-port')).toMatch(
      /bad\.yaml:\d+: Service e2e\/bad-port: spec\.ports\[0\]\.port: 70000 is not a port/,
    );
    expect(find('dup-address')).toMatch(
      /Service e2e\/dup-address: spec\.ports\[0\]\.port: 10\.96\.0\.10:\d+ is already used by Service e2e\/echo/,
    );
    expect(await roundTrip(echoPort)).toContain('ping-');
    expect(await roundTrip(poolPort)).toContain('ping-');
    shim.remove('broken.yaml');
    shim.remove('bad.yaml');
  });

  it('keeps tunnels up while the shim is down, and resyncs without draining when it returns', async () => {
    await waitFor('earlier changes to settle', () => synced(['terminator', 'originator']));
    const open = await Client.connect(echoPort);
    await open.echo('one\n');
    const counters = async () => ({
      modified: await originator.stat('listener_manager.listener_modified'),
      removed: await originator.stat('listener_manager.listener_removed'),
      draining: await originator.stat('listener_manager.total_listeners_draining'),
      tModified: await terminator.stat('listener_manager.listener_modified'),
    });
    const before = await counters();
    await shim.shim.stop();
    await open.echo('two\n');
    expect(await roundTrip(echoPort)).toContain('ping-');
    await shim.restart();
    await waitFor('both Envoys back and synced', () => synced(['terminator', 'originator']), 30_000, 200);
    await open.echo('three\n');
    expect(await roundTrip(poolPort)).toContain('ping-');
    expect(await counters()).toEqual(before);
    open.close();
  });
});
