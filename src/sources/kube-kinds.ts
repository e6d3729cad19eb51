// The kinds the Kubernetes source watches: list and watch paths per namespace, and which TCPRoute
// version the API server serves (v1 where the CRD serves it, else v1alpha2).
import {
  ApisApi,
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { isAccessDenied } from './kube-access.js';

export interface Kind {
  kind: string;
  apiVersion: string;
  /** `plural.group`, as RBAC and the API server's messages name it. */
  resource: string;
  /** Watch path for all namespaces, or for one. */
  path(namespace?: string): string;
  list(namespace?: string): Promise<{ items: KubernetesObject[]; metadata?: { resourceVersion?: string } }>;
  /** Watch only objects with these labels (Secrets: only identity Secrets are ever read). */
  labelSelector?: string;
}

/** Identity Secrets carry this label (model/secrets.ts); no other Secret is listed or watched. */
export const identitySecretSelector = 'tunnel-shim.io/identity';

export const gatewayGroup = 'gateway.networking.k8s.io';
export const tcpRouteResource = `tcproutes.${gatewayGroup}`;

/** kube-apiserver answers 429 while a CRD's storage initialises; retry those lists briefly. */
export async function retryTooMany<T>(fn: () => Promise<T>, attempts = 20): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      const code = (err as { code?: number; statusCode?: number }).code ?? (err as { statusCode?: number }).statusCode;
      if (code !== 429 || i >= attempts) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

export function coreKinds(kc: KubeConfig): Kind[] {
  const core = kc.makeApiClient(CoreV1Api);
  const discovery = kc.makeApiClient(DiscoveryV1Api);
  return [
    {
      kind: 'Service',
      apiVersion: 'v1',
      resource: 'services',
      path: (ns) => (ns ? `/api/v1/namespaces/${ns}/services` : '/api/v1/services'),
      list: (ns) => (ns ? core.listNamespacedService({ namespace: ns }) : core.listServiceForAllNamespaces()),
    },
    {
      kind: 'EndpointSlice',
      apiVersion: 'discovery.k8s.io/v1',
      resource: 'endpointslices.discovery.k8s.io',
      path: (ns) => `/apis/discovery.k8s.io/v1${ns ? `/namespaces/${ns}` : ''}/endpointslices`,
      list: (ns) =>
        ns ? discovery.listNamespacedEndpointSlice({ namespace: ns }) : discovery.listEndpointSliceForAllNamespaces(),
    },
    {
      kind: 'Pod',
      apiVersion: 'v1',
      resource: 'pods',
      path: (ns) => (ns ? `/api/v1/namespaces/${ns}/pods` : '/api/v1/pods'),
      list: (ns) => (ns ? core.listNamespacedPod({ namespace: ns }) : core.listPodForAllNamespaces()),
    },
    {
      kind: 'Secret',
      apiVersion: 'v1',
      resource: 'secrets',
      labelSelector: identitySecretSelector,
      path: (ns) => (ns ? `/api/v1/namespaces/${ns}/secrets` : '/api/v1/secrets'),
      list: (ns) =>
        ns
          ? core.listNamespacedSecret({ namespace: ns, labelSelector: identitySecretSelector })
          : core.listSecretForAllNamespaces({ labelSelector: identitySecretSelector }),
    },
  ];
}

export function tcpRouteKind(kc: KubeConfig, version: string): Kind {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const plural = 'tcproutes';
  return {
    kind: 'TCPRoute',
    apiVersion: `${gatewayGroup}/${version}`,
    resource: tcpRouteResource,
    path: (ns) => `/apis/${gatewayGroup}/${version}${ns ? `/namespaces/${ns}` : ''}/${plural}`,
    list: (ns) =>
      (ns
        ? custom.listNamespacedCustomObject({ group: gatewayGroup, version, namespace: ns, plural })
        : custom.listClusterCustomObject({ group: gatewayGroup, version, plural })) as never,
  };
}

/**
 * The TCPRoute version to watch: v1 where the CRD serves it, else v1alpha2; undefined when the CRD is
 * not installed. Probed by listing one route where the source will list them (all namespaces, or the
 * first watched one); a 401 or 403 is thrown, not mistaken for "not installed".
 */
export async function tcpRouteVersion(kc: KubeConfig, namespace: string | undefined): Promise<string | undefined> {
  const groups = await kc.makeApiClient(ApisApi).getAPIVersions();
  const group = groups.groups.find((g) => g.name === gatewayGroup);
  if (!group) return undefined;
  const custom = kc.makeApiClient(CustomObjectsApi);
  for (const version of ['v1', 'v1alpha2']) {
    if (!group.versions.some((v) => v.version === version)) continue;
    const probe = { group: gatewayGroup, version, plural: 'tcproutes', limit: 1 };
    try {
      await retryTooMany(() =>
        namespace ? custom.listNamespacedCustomObject({ ...probe, namespace }) : custom.listClusterCustomObject(probe),
      );
      return version;
    } catch (err) {
      if (isAccessDenied(err)) throw err;
      // The group exists but this version has no tcproutes: try the next one.
    }
  }
  return undefined;
}
