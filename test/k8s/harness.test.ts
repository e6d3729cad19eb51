// Proves the harness gives a real, RBAC-enforcing API server with the TCPRoute CRD installed.
// It must fail (never skip) when kube-apiserver cannot be built or started.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { ApiException, CoreV1Api, CustomObjectsApi, DiscoveryV1Api } from '@kubernetes/client-node';
import { startApiServer, type ApiServer } from './harness.js';

const NS = 'harness-test';
const TCPROUTE = { group: 'gateway.networking.k8s.io', plural: 'tcproutes', namespace: NS };

// Generous so that a first run can build kube-apiserver (~15 min on 2 cores); cached: seconds.
const START_TIMEOUT_MS = 50 * 60_000;

describe('kube-apiserver test harness', () => {
  let server: ApiServer;

  beforeAll(async () => {
    const t0 = Date.now();
    server = await startApiServer();
    console.log(`startApiServer ready in ${Date.now() - t0} ms at ${server.url}`);
  }, START_TIMEOUT_MS);

  afterAll(async () => {
    await server?.stop();
  });

  it('stores and lists a Service, an EndpointSlice and a v1alpha2 TCPRoute', async () => {
    const kc = server.kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);

    await core.createNamespace({ body: { metadata: { name: NS } } });
    // No selector: nothing would manage its endpoints, so the slice below is the only source.
    await core.createNamespacedService({
      namespace: NS,
      body: { metadata: { name: 'echo' }, spec: { ports: [{ name: 'tcp', port: 8080, protocol: 'TCP' }] } },
    });
    await discovery.createNamespacedEndpointSlice({
      namespace: NS,
      body: {
        metadata: { name: 'echo-1', labels: { 'kubernetes.io/service-name': 'echo' } },
        addressType: 'IPv4',
        // A documentation address (TEST-NET-2): stored only, never dialled.
        endpoints: [{ addresses: ['198.51.100.10'], conditions: { ready: true } }],
        ports: [{ name: 'tcp', port: 8080, protocol: 'TCP' }],
      },
    });
    await custom.createNamespacedCustomObject({
      ...TCPROUTE,
      version: 'v1alpha2',
      body: {
        apiVersion: 'gateway.networking.k8s.io/v1alpha2',
        kind: 'TCPRoute',
        metadata: { name: 'echo-route' },
        spec: { parentRefs: [{ name: 'tunnel' }], rules: [{ backendRefs: [{ name: 'echo', port: 8080 }] }] },
      },
    });

    const services = await core.listNamespacedService({ namespace: NS });
    expect(services.items.map((s) => s.metadata?.name)).toEqual(['echo']);
    expect(services.items[0]?.spec?.clusterIP).toMatch(/^10\.0\./); // from --service-cluster-ip-range

    const slices = await discovery.listNamespacedEndpointSlice({
      namespace: NS,
      labelSelector: 'kubernetes.io/service-name=echo',
    });
    expect(slices.items.map((s) => s.endpoints[0]?.addresses)).toEqual([['198.51.100.10']]);

    // Written as v1alpha2, stored as v1: both versions serve the same object.
    for (const version of ['v1alpha2', 'v1']) {
      const routes = (await custom.listNamespacedCustomObject({ ...TCPROUTE, version })) as {
        items: { apiVersion: string; metadata: { name: string }; spec: { rules: unknown[] } }[];
      };
      expect(routes.items.map((r) => r.metadata.name)).toEqual(['echo-route']);
      expect(routes.items[0]?.apiVersion).toBe(`gateway.networking.k8s.io/${version}`);
      expect(routes.items[0]?.spec.rules).toHaveLength(1);
    }
  });

  it('enforces RBAC: the unbound shim user may not list services', async () => {
    const core = server.kubeConfig('shim').makeApiClient(CoreV1Api);
    const err = await core.listNamespacedService({ namespace: NS }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApiException);
    expect((err as ApiException<unknown>).code).toBe(403);
  });

  it('restarts kube-apiserver on the same port and etcd, and clients work again', async () => {
    const kc = server.kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    await server.restart();
    // Same client objects (same URL, CA and token), and the data survived in etcd.
    const services = await core.listNamespacedService({ namespace: NS });
    expect(services.items.map((s) => s.metadata?.name)).toEqual(['echo']);
    const routes = (await custom.listNamespacedCustomObject({ ...TCPROUTE, version: 'v1' })) as {
      items: { metadata: { name: string } }[];
    };
    expect(routes.items.map((r) => r.metadata.name)).toEqual(['echo-route']);
  });
});
