// The Kubernetes source without permission, against a real kube-apiserver: every refused list is a
// diagnostic and a metric naming verb and resource (not "the CRD is not installed"), /readyz stays 503
// only until access is granted, and TCPRoutes are picked up when they become listable (permission
// granted later, or the CRD installed later) without a restart.
import {
  ApiextensionsV1Api,
  loadYaml,
  type KubeConfig,
  type KubernetesObject,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Shim } from '../../src/shim.js';
import { KubernetesSource } from '../../src/sources/kubernetes.js';
import { AdsClient, originateMeta } from '../helpers/ads-client.js';
import { apply, remove, service } from '../helpers/kube.js';
import { repo } from '../helpers/repo.js';
import { waitFor } from '../helpers/wait.js';
import { startApiServer, type ApiServer } from './harness.js';

const ns = 'perm';
let api: ApiServer;
let admin: KubeConfig;

const role = (name: string, rules: { apiGroups: string[]; resources: string[] }[]) =>
  [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name },
      rules: rules.map((r) => ({ ...r, verbs: ['get', 'list', 'watch'] })),
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ kind: 'User', name: 'shim', apiGroup: 'rbac.authorization.k8s.io' }],
    },
  ] as unknown as KubernetesObject[];
const coreAccess = role('shim-core', [
  { apiGroups: [''], resources: ['services', 'pods'] },
  { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'] },
]);
const routeAccess = role('shim-routes', [{ apiGroups: ['gateway.networking.k8s.io'], resources: ['tcproutes'] }]);

const splitObjects = (port: number): KubernetesObject[] => [
  service({ name: 'web', namespace: ns, port, annotations: { 'tunnel-shim.io/tunnel': 'h2' } }),
  service({ name: 'web-v1', namespace: ns, port: 80, annotations: {} }),
  service({ name: 'web-v2', namespace: ns, port: 80, annotations: {} }),
  {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'TCPRoute',
    metadata: { name: 'web-split', namespace: ns },
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: 'web', port }],
      rules: [
        {
          backendRefs: [
            { name: 'web-v1', port: 80, weight: 90 },
            { name: 'web-v2', port: 80, weight: 10 },
          ],
        },
      ],
    },
  } as KubernetesObject,
];

interface Running {
  shim: Shim;
  started: Promise<void>;
  get(p: string): Promise<{ status: number; text: string }>;
  stop(): Promise<void>;
}

/** The shim on the Kubernetes source as `user`, started without waiting for it to sync. */
function startShim(kc: KubeConfig): Running {
  const logger = pino({ level: process.env.SHIM_LOG_LEVEL ?? 'silent' });
  const source = new KubernetesSource({ kubeConfig: kc, logger, backoffMs: [200, 1000] });
  const shim = new Shim({ source, xdsAddress: '127.0.0.1:0', adminAddress: '127.0.0.1:0', logger });
  const started = shim.start();
  started.catch(() => undefined);
  const running: Running = {
    shim,
    started,
    get: async (p) => {
      const res = await fetch(`http://127.0.0.1:${shim.adminPort}${p}`, { signal: AbortSignal.timeout(5000) });
      return { status: res.status, text: await res.text() };
    },
    stop: () => shim.stop(),
  };
  return running;
}

const diagnosticTexts = async (r: Running) =>
  (JSON.parse((await r.get('/debug/diagnostics')).text) as { text: string }[]).map((d) => d.text);
const metric = async (r: Running, name: string) => {
  const line = (await r.get('/metrics')).text.split('\n').find((l) => l.startsWith(`tunnel_shim_${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
};

/** The originator's listener for Service web: does its tcp_proxy split by weight? */
async function webSplit(client: AdsClient, since: number): Promise<boolean> {
  const r = client.responses
    .slice(since)
    .filter((x) => x.kind === 'listener')
    .at(-1);
  const listener = r?.resources.find((x) => x.name.startsWith(`originate/${ns}/web/`));
  return JSON.stringify(listener?.object ?? {}).includes('weighted_clusters');
}

beforeAll(async () => {
  api = await startApiServer();
  admin = api.kubeConfig('admin');
  await apply(admin, [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } } as KubernetesObject]);
}, 30 * 60_000);

afterAll(async () => {
  await api?.stop();
});

describe('kubernetes source without permission', () => {
  it(
    'reports each refused list (403) by verb and resource, stays unready, and syncs once access is granted; ' +
      'TCPRoute access granted later turns splits on without a restart',
    async () => {
      const port = 7100;
      await apply(admin, splitObjects(port));
      const running = startShim(api.kubeConfig('shim'));
      try {
        const denied = (resource: string, plural: string, group: string) =>
          `error: APIResource ${resource}: list: 403 Forbidden in all namespaces: ${resource} is forbidden: User ` +
          `"shim" cannot list resource "${plural}" in API group "${group}" at the cluster scope; retrying with backoff`;
        const all = [
          denied('endpointslices.discovery.k8s.io', 'endpointslices', 'discovery.k8s.io'),
          denied('pods', 'pods', ''),
          denied('services', 'services', ''),
          denied('tcproutes.gateway.networking.k8s.io', 'tcproutes', 'gateway.networking.k8s.io'),
        ];
        await waitFor(
          'a 403 diagnostic per resource',
          async () => (await diagnosticTexts(running)).sort().join('\n') === all.join('\n'),
          20_000,
          100,
        );
        expect((await running.get('/readyz')).status).toBe(503);
        expect(await metric(running, 'source_errors')).toBe(4);
        expect(await metric(running, 'source_access_denied{verb="list",resource="services"}')).toBe(1);
        expect(
          await metric(running, 'source_access_denied{verb="list",resource="tcproutes.gateway.networking.k8s.io"}'),
        ).toBe(1);

        await apply(admin, coreAccess);
        await running.started;
        expect((await running.get('/readyz')).status).toBe(200);
        expect(await diagnosticTexts(running)).toEqual([all[3]]);
        expect(await metric(running, 'source_access_denied{verb="list",resource="services"}')).toBeUndefined();
        expect(await metric(running, 'source_errors')).toBe(1);

        const client = new AdsClient(`127.0.0.1:${running.shim.xdsPort}`, {
          id: 'perm-originator',
          metadata: originateMeta,
        });
        client.autoAck = true;
        try {
          client.send('listener');
          await client.next('listener', 10_000);
          expect(await webSplit(client, 0)).toBe(false);
          const seen = client.responses.length;
          await apply(admin, routeAccess);
          await waitFor('the split once TCPRoutes can be listed', () => webSplit(client, seen), 20_000, 100);
          await waitFor(
            'the TCPRoute diagnostic to clear',
            async () => (await diagnosticTexts(running)).length === 0,
            10_000,
            100,
          );
          expect(await metric(running, 'source_errors')).toBe(0);
        } finally {
          client.close();
        }
      } finally {
        await running.stop();
        await remove(admin, [...coreAccess, ...routeAccess]);
      }
    },
  );

  it('picks up TCPRoutes when their CRD is installed after the shim started', async () => {
    const ext = admin.makeApiClient(ApiextensionsV1Api);
    const crd = loadYaml<V1CustomResourceDefinition>(
      fs.readFileSync(path.join(repo, 'deploy/crds/tcproute.yaml'), 'utf8'),
    );
    await ext.deleteCustomResourceDefinition({ name: crd.metadata!.name! });
    await waitFor(
      'the CRD to be gone',
      () =>
        ext.readCustomResourceDefinition({ name: crd.metadata!.name! }).then(
          () => false,
          () => true,
        ),
      30_000,
      200,
    );
    await apply(admin, [...coreAccess, ...routeAccess]);
    const running = startShim(api.kubeConfig('shim'));
    try {
      await running.started;
      expect(await diagnosticTexts(running)).toEqual([]);
      const client = new AdsClient(`127.0.0.1:${running.shim.xdsPort}`, {
        id: 'crd-originator',
        metadata: originateMeta,
      });
      client.autoAck = true;
      try {
        client.send('listener');
        await client.next('listener', 10_000);
        expect(await webSplit(client, 0)).toBe(false);
        const seen = client.responses.length;
        await ext.createCustomResourceDefinition({ body: crd });
        await waitFor(
          'the CRD to be established',
          async () =>
            (await ext.readCustomResourceDefinition({ name: crd.metadata!.name! })).status?.conditions?.some(
              (c) => c.type === 'Established' && c.status === 'True',
            ),
          30_000,
          200,
        );
        await waitFor(
          'the route to be created',
          () =>
            apply(admin, splitObjects(7100).slice(3)).then(
              () => true,
              () => false,
            ),
          30_000,
          500,
        );
        await waitFor('the split once the CRD is installed', () => webSplit(client, seen), 30_000, 100);
      } finally {
        client.close();
      }
    } finally {
      await running.stop();
    }
  });
});
