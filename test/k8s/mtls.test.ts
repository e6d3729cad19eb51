// mTLS with identity Secrets from the Kubernetes API (a real kube-apiserver; the shim runs with exactly
// deploy/rbac.yaml): only Secrets labelled tunnel-shim.io/identity are read; the tunnel is mTLS with the
// certificates the shim serves over SDS, the terminator's certificate is checked against the endpoint
// Pod's service account; a bad Secret and a deleted one are Warning Events naming Secret and field,
// while the last good certificate keeps serving.
import { CoreV1Api, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issue, testCa, type TestIdentity } from '../helpers/certs.js';
import { startEnvoy, type EnvoyProcess } from '../helpers/envoy.js';
import { apply, deployObjects, endpointSlice, remove, service, startKubeShim, type KubeShim } from '../helpers/kube.js';
import { roundTrip } from '../helpers/net.js';
import { createNetns, type Netns } from '../helpers/netns.js';
import { waitFor } from '../helpers/wait.js';
import { startApiServer, type ApiServer } from './harness.js';

const ns = 'mtls';
let api: ApiServer;
let admin: KubeConfig;
let shim: KubeShim;
let originator: EnvoyProcess;
let terminator: EnvoyProcess;
let pods: Netns;
let client: TestIdentity;
let server: TestIdentity;
const appPort = 7300;

const secretOf = (who: TestIdentity) => YAML.parse(who.yaml) as KubernetesObject;

async function warningOn(name: string, reason: string) {
  const core = admin.makeApiClient(CoreV1Api);
  return waitFor(
    `a Warning Event ${reason} on ${name}`,
    async () => {
      const list = await core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name}` });
      return list.items.find((e) => e.reason === reason);
    },
    20_000,
    200,
  );
}

beforeAll(async () => {
  api = await startApiServer();
  admin = api.kubeConfig('admin');
  const [role, binding] = deployObjects('rbac.yaml') as [KubernetesObject, KubernetesObject & { subjects: unknown[] }];
  await apply(admin, [
    role,
    {
      ...binding,
      subjects: [{ kind: 'User', name: 'shim', apiGroup: 'rbac.authorization.k8s.io' }],
    } as KubernetesObject,
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } } as KubernetesObject,
  ]);
  pods = createNetns(1);
  const podIp = pods.addresses[0]!;
  await pods.startEcho([{ address: podIp, port: 8000, name: 'db-0' }]);
  const ca = await testCa();
  [client, server] = await Promise.all([issue(ca, `${ns}/client`), issue(ca, `${ns}/db`)]);
  await apply(admin, [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'db', namespace: ns } } as KubernetesObject,
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'db-0', namespace: ns },
      spec: { serviceAccountName: 'db', containers: [{ name: 'app', image: 'registry.invalid/db:1' }] },
    } as KubernetesObject,
    service({
      name: 'db',
      namespace: ns,
      port: appPort,
      annotations: { 'tunnel-shim.io/tunnel': 'h2', 'tunnel-shim.io/mtls': 'strict' },
    }),
    endpointSlice({ service: 'db', namespace: ns, port: 8000, ips: [podIp], pods: { [podIp]: 'db-0' } }),
    secretOf(client),
    secretOf(server),
    // Not labelled: never read (the shim's RBAC could read it; its watch does not ask for it).
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'unrelated', namespace: ns },
      stringData: { password: 'hunter2' },
    } as KubernetesObject,
  ]);
  shim = await startKubeShim(api.kubeConfig('shim'), { xdsHost: pods.hostAddress, tls: { insecureIdentities: true } });
  [terminator, originator] = await Promise.all([
    startEnvoy({
      role: 'terminate',
      nodeId: 'k8s-db-0',
      xdsAddress: shim.xdsAddress,
      listenAddress: podIp,
      identity: `${ns}/db`,
      netns: { exec: pods.exec, adminHost: podIp },
    }),
    startEnvoy({
      role: 'originate',
      nodeId: 'k8s-client',
      xdsAddress: shim.xdsAddress,
      listenAddress: '127.0.0.1',
      identity: `${ns}/client`,
    }),
  ]);
}, 30 * 60_000);

afterAll(async () => {
  await Promise.all([originator?.stop(), terminator?.stop()]);
  await shim?.stop();
  pods?.destroy();
  await api?.stop();
});

describe('mTLS with identity Secrets from Kubernetes', () => {
  it('tunnels over mTLS with certificates from kubernetes.io/tls Secrets; reads only labelled Secrets', async () => {
    await waitFor('the mTLS tunnel', () => roundTrip(appPort).then(() => true), 30_000, 200);
    expect(await roundTrip(appPort, 'k8s mtls\n')).toBe('db-0\nk8s mtls\n');
    const entry = await waitFor('terminator log', () => terminator.accessLog().find((e) => e.response_code === 200));
    expect(entry.peer_identity).toBe(client.id);
    expect(await terminator.stat(`listener.${pods.addresses[0]}_15008.ssl.handshake`)).toBeGreaterThan(0);
    // The originator checks the terminator is the endpoint Pod's service account, exactly.
    const clusters = await originator.get('/config_dump?resource=dynamic_active_clusters');
    expect(clusters).toContain(`"exact": "spiffe://cluster.local/ns/${ns}/sa/db"`);
    const secrets = shim.source.state().objects.filter((o) => o.object.kind === 'Secret');
    expect(secrets.map((s) => s.object.metadata?.name).sort()).toEqual(['client-identity', 'db-identity']);
  });

  it('a bad Secret and then a deleted one are Warning Events; the last good certificate keeps serving', async () => {
    const lying = secretOf(server);
    (lying.metadata!.annotations as Record<string, string>)['tunnel-shim.io/identity'] =
      `spiffe://cluster.local/ns/${ns}/sa/admin`;
    await apply(admin, [lying]);
    const invalid = await warningOn('db-identity', 'InvalidSecret');
    expect(invalid.message).toContain('data["tls.crt"]');
    expect(await roundTrip(appPort, 'still\n')).toBe('db-0\nstill\n');
    await remove(admin, [lying]);
    const kept = await warningOn('db-identity', 'KeptLastGoodCertificate');
    expect(kept.message).toContain('was deleted');
    expect(await roundTrip(appPort, 'still after delete\n')).toBe('db-0\nstill after delete\n');
  });
});
