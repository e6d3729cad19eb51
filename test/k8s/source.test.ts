// The Kubernetes source against a real kube-apiserver, with real Envoys where traffic is claimed.
// The shim runs with exactly the ClusterRole in deploy/rbac.yaml, bound to a user with no other rights.
import { CoreV1Api, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEnvoy, type EnvoyProcess } from '../helpers/envoy.js';
import {
  apply,
  deployObjects,
  endpointSlice,
  pod,
  remove,
  service,
  startKubeShim,
  type KubeShim,
} from '../helpers/kube.js';
import { Client, freePort, roundTrip } from '../helpers/net.js';
import { createNetns, type Netns } from '../helpers/netns.js';
import { waitFor } from '../helpers/wait.js';
import { startApiServer, type ApiServer } from './harness.js';
import { debugNodes, nodeStatus } from '../helpers/nodes.js';

const ns = 'tunnels';
let api: ApiServer;
let admin: KubeConfig;
let shim: KubeShim;
let originator: EnvoyProcess;
let terminator: EnvoyProcess;
// The API server rejects loopback endpoints, so the "pods" live in a network namespace of the
// test's own: two addresses, each with echo backends, and the terminating Envoy beside them.
let pods: Netns;
let podA: string;
let podB: string;
const tunnelPort = 15008;
const backendPort = 8000;

const annotations = () => ({ 'tunnel-shim.io/tunnel': 'h2', 'tunnel-shim.io/tunnel-port': String(tunnelPort) });

async function listenerNames(): Promise<string[]> {
  const dump = JSON.parse(await originator.get('/config_dump?resource=dynamic_listeners')) as {
    configs: { name: string; active_state?: unknown }[];
  };
  return dump.configs
    .filter((c) => c.active_state)
    .map((c) => c.name)
    .sort();
}

/**
 * Waits until both Envoys ACKed everything sent. An originator can learn a new endpoint a moment
 * before the terminator's filter chain for it has warmed; tests assert on settled state.
 */
async function settled(): Promise<void> {
  await waitFor(
    'both Envoys to ACK the latest config',
    async () => {
      const nodes = await debugNodes(shim.adminUrl);
      const mine = nodes.filter((n) => n.id === 'k8s-originator' || n.id === 'k8s-terminator');
      return mine.length === 2 && mine.every((n) => Object.values(n.types).every((t) => t.status === 'SYNCED'));
    },
    20_000,
    50,
  );
}

async function refused(port: number): Promise<boolean> {
  return Client.connect(port).then(
    (c) => (c.close(), false),
    () => true,
  );
}

beforeAll(async () => {
  api = await startApiServer();
  admin = api.kubeConfig('admin');
  // Bind the shim's user to the shipped ClusterRole, and nothing else.
  const [role, binding] = deployObjects('rbac.yaml') as [KubernetesObject, KubernetesObject & { subjects: unknown[] }];
  await apply(admin, [
    role,
    {
      ...binding,
      subjects: [{ kind: 'User', name: 'shim', apiGroup: 'rbac.authorization.k8s.io' }],
    } as KubernetesObject,
  ]);
  await apply(admin, [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }]);
  pods = createNetns(2);
  [podA, podB] = pods.addresses as [string, string];
  await pods.startEcho([
    { address: podA, port: backendPort, name: 'pod-a' },
    { address: podB, port: backendPort, name: 'pod-b' },
    { address: podA, port: 9001, name: 'v1' },
    { address: podA, port: 9002, name: 'v2' },
  ]);
  shim = await startKubeShim(api.kubeConfig('shim'), { xdsHost: pods.hostAddress });
  [terminator, originator] = await Promise.all([
    startEnvoy({
      role: 'terminate',
      nodeId: 'k8s-terminator',
      xdsAddress: shim.xdsAddress,
      netns: { exec: pods.exec, adminHost: podA },
    }),
    startEnvoy({
      role: 'originate',
      nodeId: 'k8s-originator',
      xdsAddress: shim.xdsAddress,
      listenAddress: '127.0.0.1',
      concurrency: 2,
    }),
  ]);
}, 30 * 60_000);

afterAll(async () => {
  await Promise.all([originator?.stop(), terminator?.stop()]);
  await shim?.stop();
  pods?.destroy();
  await api?.stop();
});

describe('kubernetes source', () => {
  it('tunnels an annotated Service, drops a deleted endpoint, and removes the tunnel with the annotation', async () => {
    const port = await freePort();
    await apply(admin, [
      service({ name: 'a', namespace: ns, port, annotations: annotations() }),
      endpointSlice({ service: 'a', namespace: ns, port: backendPort, ips: [podA, podB] }),
    ]);
    await waitFor('the tunnel', () => roundTrip(port).then(() => true), 20_000, 100);
    await settled();
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) seen.add((await roundTrip(port)).split('\n')[0]!);
    expect([...seen].sort()).toEqual(['pod-a', 'pod-b']);

    await apply(admin, [endpointSlice({ service: 'a', namespace: ns, port: backendPort, ips: [podB] })]);
    await waitFor(`EDS without ${podA}`, async () => {
      const clusters = await originator.get('/clusters');
      return (
        !clusters.includes(`originate/${ns}/a/${port}::${podA}:`) &&
        clusters.includes(`originate/${ns}/a/${port}::${podB}:`)
      );
    });
    for (let i = 0; i < 5; i++) expect(await roundTrip(port)).toMatch(/^pod-b\n/);

    await apply(admin, [service({ name: 'a', namespace: ns, port, annotations: {} })]);
    await waitFor('the listener to go', () => refused(port), 20_000, 100);
    expect(await listenerNames()).not.toContain(`originate/${ns}/a/${port}`);
  });

  it('splits a Service 90/10 with a TCPRoute, then moves everything with 0/100', async () => {
    const parentPort = await freePort();
    // v1 and v2 share one address and differ only by port: the CONNECT authority must tell them apart.
    const route = (w1: number, w2: number) =>
      ({
        apiVersion: 'gateway.networking.k8s.io/v1alpha2',
        kind: 'TCPRoute',
        metadata: { name: 'web-split', namespace: ns },
        spec: {
          parentRefs: [{ group: '', kind: 'Service', name: 'web', port: parentPort }],
          rules: [
            {
              backendRefs: [
                { name: 'web-v1', port: 80, weight: w1 },
                { name: 'web-v2', port: 80, weight: w2 },
              ],
            },
          ],
        },
      }) as KubernetesObject;
    await apply(admin, [
      service({ name: 'web', namespace: ns, port: parentPort, annotations: annotations() }),
      service({ name: 'web-v1', namespace: ns, port: 80, annotations: {} }),
      service({ name: 'web-v2', namespace: ns, port: 80, annotations: {} }),
      endpointSlice({ service: 'web-v1', namespace: ns, port: 9001, ips: [podA] }),
      endpointSlice({ service: 'web-v2', namespace: ns, port: 9002, ips: [podA] }),
      route(90, 10),
    ]);
    await waitFor('the split listener', () => roundTrip(parentPort).then(() => true), 20_000, 100);
    await settled();
    const counts = { v1: 0, v2: 0 } as Record<string, number>;
    for (let i = 0; i < 1000; i++) counts[(await roundTrip(parentPort)).split('\n')[0]!]!++;
    const share = counts.v1! / 1000;
    console.log(`TCPRoute 90/10 over 1000 tunneled connections: v1 share ${share}`);
    expect(counts.v1! + counts.v2!).toBe(1000);
    expect(share).toBeGreaterThanOrEqual(0.85);
    expect(share).toBeLessThanOrEqual(0.95);

    const version = (await nodeStatus(shim.adminUrl, 'k8s-originator'))!.types.listener!.ackedVersion;
    await apply(admin, [route(0, 100)]);
    await waitFor(
      'the originator to ACK the new split',
      async () => {
        const l = (await nodeStatus(shim.adminUrl, 'k8s-originator'))!.types.listener!;
        return l.status === 'SYNCED' && l.ackedVersion !== version;
      },
      20_000,
      50,
    );
    // Every connection opened after the ACK goes to v2.
    for (let i = 0; i < 100; i++) expect(await roundTrip(parentPort)).toMatch(/^v2\n/);
  });

  it(
    'subsets from Pod labels (field guide 001): env=taobao reaches only the taobao Pod; switching to env=hema ' +
      'moves new connections',
    async () => {
      const port = await freePort();
      const shop = (env: string) =>
        service({
          name: 'shop',
          namespace: ns,
          port,
          annotations: { ...annotations(), 'tunnel-shim.io/metadata-match': `{env: ${env}}` },
        });
      const objects = [
        pod({ name: 'shop-hema', namespace: ns, labels: { app: 'shop', env: 'hema' } }),
        pod({ name: 'shop-taobao', namespace: ns, labels: { app: 'shop', env: 'taobao' } }),
        shop('taobao'),
        // Both Pods back the one Service; the slice names each endpoint's Pod, as the controller does.
        endpointSlice({
          service: 'shop',
          namespace: ns,
          port: backendPort,
          ips: [podA, podB],
          pods: { [podA]: 'shop-hema', [podB]: 'shop-taobao' },
        }),
      ];
      // The terminator's lines for tunnels that opened (200), in the order Envoy wrote them: it writes
      // a line when a connection ends and flushes in that order, so counting lines, not reading them
      // at a moment, tells which connections they belong to.
      const shopLog = () =>
        terminator
          .accessLog()
          .filter((e) => e.authority === `shop.${ns}.svc.cluster.local:${port}` && e.response_code === 200);
      const start = shopLog().length;
      await apply(admin, objects);
      // NO_FALLBACK: until the Pods' labels reach the endpoints, no endpoint matches and connections fail
      // (at the originator: the terminator sees only the one that gets through).
      await waitFor('the shop tunnel', () => roundTrip(port).then(() => true), 20_000, 100);
      await settled();
      // The labels came from the Pods (through the targetRefs) into the originator's endpoint metadata.
      const eds = JSON.parse(await originator.get('/config_dump?resource=dynamic_endpoint_configs&include_eds')) as {
        configs: {
          endpoint_config: {
            cluster_name: string;
            endpoints?: {
              lb_endpoints: {
                endpoint: { address: { socket_address: { address: string } } };
                metadata?: { filter_metadata: Record<string, Record<string, string>> };
              }[];
            }[];
          };
        }[];
      };
      const shopEds = eds.configs.find((c) => c.endpoint_config.cluster_name === `originate/${ns}/shop/${port}`)!;
      const envOf = Object.fromEntries(
        shopEds.endpoint_config.endpoints![0]!.lb_endpoints.map((e) => [
          e.endpoint.address.socket_address.address,
          e.metadata?.filter_metadata['envoy.lb']?.env,
        ]),
      );
      expect(envOf).toEqual({ [podA]: 'hema', [podB]: 'taobao' });

      for (let i = 0; i < 20; i++) expect(await roundTrip(port)).toMatch(/^pod-b\n/);
      const taobao = await waitFor('21 terminator log lines', () =>
        shopLog().length >= start + 21 ? shopLog().slice(start) : undefined,
      );
      expect(new Set(taobao.map((e) => e.upstream_host))).toEqual(new Set([`${podB}:${backendPort}`]));
      expect(await originator.stat(`cluster.originate/${ns}/shop/${port}.lb_subsets_selected`)).toBeGreaterThanOrEqual(
        20,
      );

      const version = (await nodeStatus(shim.adminUrl, 'k8s-originator'))!.types.listener!.ackedVersion;
      await apply(admin, [shop('hema')]);
      await waitFor(
        'the originator to ACK metadata_match env=hema',
        async () => {
          const l = (await nodeStatus(shim.adminUrl, 'k8s-originator'))!.types.listener!;
          return l.status === 'SYNCED' && l.ackedVersion !== version;
        },
        20_000,
        50,
      );
      // Every connection opened after the ACK goes to the hema Pod.
      for (let i = 0; i < 20; i++) expect(await roundTrip(port)).toMatch(/^pod-a\n/);
      const hema = await waitFor('20 more terminator log lines', () =>
        shopLog().length >= start + 41 ? shopLog().slice(start + 21) : undefined,
      );
      expect(new Set(hema.map((e) => e.upstream_host))).toEqual(new Set([`${podA}:${backendPort}`]));
      await remove(admin, objects);
    },
  );

  it(
    'turns a malformed annotation into a Warning Event naming the field, and keeps the neighbours ' + 'working',
    async () => {
      const [goodPort, badPort] = [await freePort(), await freePort()];
      await apply(admin, [
        service({ name: 'good', namespace: ns, port: goodPort, annotations: annotations() }),
        endpointSlice({ service: 'good', namespace: ns, port: backendPort, ips: [podB] }),
        service({
          name: 'bad',
          namespace: ns,
          port: badPort,
          annotations: { 'tunnel-shim.io/tunnel': 'h2', 'tunnel-shim.io/tunnel-port': 'eighty' },
        }),
      ]);
      const core = admin.makeApiClient(CoreV1Api);
      const event = await waitFor(
        'a Warning Event on Service bad',
        async () => {
          const list = await core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=bad' });
          return list.items.find((e) => e.reason === 'InvalidAnnotation');
        },
        20_000,
        200,
      );
      expect(event.type).toBe('Warning');
      expect(event.involvedObject.kind).toBe('Service');
      expect(event.message).toBe(
        'metadata.annotations["tunnel-shim.io/tunnel-port"]: "eighty" is not a port (1-65535)',
      );
      await waitFor('the good neighbour', () => roundTrip(goodPort).then(() => true), 20_000, 100);
      expect(await refused(badPort)).toBe(true);

      // Rate limit: the same problem coming back within the interval is not recorded again.
      const bad = (value: string) =>
        service({
          name: 'bad',
          namespace: ns,
          port: badPort,
          annotations: { 'tunnel-shim.io/tunnel': 'h2', 'tunnel-shim.io/tunnel-port': value },
        });
      for (const value of ['15008', 'eighty', '15008', 'eighty']) {
        const rebuilds = shim.shim.pipeline.rebuilds;
        await apply(admin, [bad(value)]);
        await waitFor('the change to be rebuilt', () => shim.shim.pipeline.rebuilds > rebuilds, 20_000, 20);
      }
      await new Promise((r) => setTimeout(r, 1000));
      const again = await core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=bad' });
      expect(again.items.filter((e) => e.reason === 'InvalidAnnotation')).toHaveLength(1);
      // The shim serves 'bad' with its last good settings, which a freshly started replica never saw:
      // the one way replicas can differ. Remove it so the replica test compares settled, valid state.
      const rebuilds = shim.shim.pipeline.rebuilds;
      await remove(admin, [bad('eighty')]);
      await waitFor('the removal to be rebuilt', () => shim.shim.pipeline.rebuilds > rebuilds, 20_000, 20);
    },
  );

  it('keeps Envoys serving through an API server restart and a relist after 410 Gone, then converges', async () => {
    const port = await freePort();
    await apply(admin, [
      service({ name: 'steady', namespace: ns, port, annotations: annotations() }),
      endpointSlice({ service: 'steady', namespace: ns, port: backendPort, ips: [podA] }),
    ]);
    await waitFor('steady tunnel', () => roundTrip(port).then(() => true), 20_000, 100);
    await settled();
    const open = await Client.connect(port);
    await open.echo('before\n');
    const modified = await originator.stat('listener_manager.listener_modified');
    const lists = shim.source.stats.lists;
    // Writes to another resource move the cluster's resourceVersion past what the shim's watches saw,
    // so after the restart the API server's fresh watch cache answers their old versions with 410 Gone.
    for (let i = 0; i < 5; i++)
      await apply(admin, [
        {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: `bump-${i}`, namespace: ns },
          data: { i: String(i) },
        } as KubernetesObject,
      ]);
    await api.restart();
    await open.echo('during\n');
    expect(await roundTrip(port)).toContain('ping-');
    const newPort = await freePort();
    await apply(admin, [
      service({ name: 'after', namespace: ns, port: newPort, annotations: annotations() }),
      endpointSlice({ service: 'after', namespace: ns, port: backendPort, ips: [podA] }),
    ]);
    await waitFor('convergence after the restart', () => roundTrip(newPort).then(() => true), 60_000, 200);
    expect(shim.source.stats.lists).toBeGreaterThan(lists);
    await open.echo('after\n');
    open.close();
    expect(await originator.stat('listener_manager.listener_modified')).toBe(modified);
  });

  it('serves the very same configuration from a second replica (no state of its own)', async () => {
    const second = await startKubeShim(api.kubeConfig('shim'), { xdsHost: '127.0.0.1' });
    const { AdsClient } = await import('../helpers/ads-client.js');
    const meta = { 'tunnel-shim.io/role': 'originate', 'tunnel-shim.io/listen-address': '127.0.0.1' };
    const [a, b] = [
      new AdsClient(shim.xdsAddress, { id: 'replica-a', metadata: meta }),
      new AdsClient(second.xdsAddress, { id: 'replica-b', metadata: meta }),
    ];
    try {
      for (const c of [a, b]) c.send('listener');
      const [la, lb] = await Promise.all([a.next('listener', 20_000), b.next('listener', 20_000)]);
      expect(lb.version_info).toBe(la.version_info);
      expect(lb.resources).toEqual(la.resources);
    } finally {
      a.close();
      b.close();
      await second.stop();
    }
  });

  it('serves all 500 Services in the very first snapshot after start-up', async () => {
    const many: KubernetesObject[] = [];
    for (let i = 0; i < 500; i++)
      many.push(
        service({ name: `bulk-${i}`, namespace: 'bulk', port: 80, annotations: { 'tunnel-shim.io/tunnel': 'h2' } }),
      );
    await apply(admin, [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bulk' } } as KubernetesObject,
      ...many,
    ]);
    const fresh = await startKubeShim(api.kubeConfig('shim'), { namespaces: ['bulk'] });
    const { AdsClient } = await import('../helpers/ads-client.js');
    const client = new AdsClient(fresh.xdsAddress, {
      id: 'first-snapshot',
      metadata: { 'tunnel-shim.io/role': 'originate' },
    });
    try {
      client.send('cluster');
      const first = await client.next('cluster', 20_000);
      expect(first.resources.length).toBe(500);
    } finally {
      client.close();
      await fresh.stop();
      await remove(admin, many);
    }
  });
});
