// What `tunnel-shim inject` adds to a pod: one Envoy container per role, the volume of the ConfigMap
// that holds their bootstraps, and that ConfigMap. Plain objects; inject.ts puts them into the YAML.
import { buildBootstrap, checkBootstrap } from './bootstrap.js';
import { NodeMetadata, type Role } from '../translate/view.js';

/** The Envoy version the project pins (scripts/setup.sh installs the same one for the tests). */
export const ENVOY_VERSION = '1.40.0';
export const defaultEnvoyImage = `envoyproxy/envoy:v${ENVOY_VERSION}`;
/** deploy/shim.yaml's Service. */
export const defaultXdsAddress = 'tunnel-shim.tunnel-shim.svc.cluster.local:18000';

export type InjectRole = Extract<Role, 'originate' | 'terminate'>;
export const injectRoles: readonly InjectRole[] = ['originate', 'terminate'];

/** Pod annotation listing the roles injected: marks the containers and volume below as inject's own. */
export const injectedAnnotation = 'tunnel-shim.io/injected';
export const configMapName = 'tunnel-shim-envoy';
export const bootstrapMountPath = '/etc/tunnel-shim';

export const containerName = (role: InjectRole) => `envoy-${role}`;

// Two Envoys of one pod share its network namespace: each role gets its own admin and readiness ports.
const ports: Record<InjectRole, { admin: number; ready: number }> = {
  originate: { admin: 15000, ready: 15021 },
  terminate: { admin: 15001, ready: 15022 },
};

/**
 * Originators listen on the pod's loopback (the app connects to 127.0.0.1:PORT of the Service; no
 * iptables): a listener on the pod IP would let other pods use this pod's tunnels. Terminators bind the
 * pod IP, which the kubelet gives in $(POD_IP), so the shim sends each only its own pod's filter chains.
 */
const originateListenAddress = '127.0.0.1';

export interface SidecarOptions {
  image: string;
}

/**
 * The Envoy container of one role. `$(VAR)` in args is expanded by the kubelet from `env`. The node id
 * is the pod's `name.namespace`; two Envoys in one pod (`--role both`) add their role, so each has its own.
 */
export function envoyContainer(role: InjectRole, o: SidecarOptions, podRoles: number): Record<string, unknown> {
  const nodeId = `$(POD_NAME).$(POD_NAMESPACE)${podRoles > 1 ? `/${role}` : ''}`;
  const args = ['-c', `${bootstrapMountPath}/${role}.yaml`, '--service-node', nodeId];
  if (role === 'terminate') {
    args.push('--config-yaml', `{"node": {"metadata": {"${NodeMetadata.listenAddress}": "$(POD_IP)"}}}`);
  }
  // Hot restart would share a domain socket per network namespace, so two Envoys of one pod collide.
  args.push('--disable-hot-restart', '--concurrency', '2');
  const field = (name: string, fieldPath: string) => ({ name, valueFrom: { fieldRef: { fieldPath } } });
  return {
    name: containerName(role),
    image: o.image,
    command: ['envoy'],
    args,
    env: [
      field('POD_NAME', 'metadata.name'),
      field('POD_NAMESPACE', 'metadata.namespace'),
      field('POD_IP', 'status.podIP'),
    ],
    readinessProbe: { httpGet: { path: '/ready', port: ports[role].ready }, periodSeconds: 5 },
    resources: { requests: { cpu: '100m', memory: '64Mi' } },
    securityContext: {
      runAsUser: 101,
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    },
    volumeMounts: [{ name: configMapName, mountPath: bootstrapMountPath, readOnly: true }],
  };
}

export function bootstrapVolume(): Record<string, unknown> {
  return { name: configMapName, configMap: { name: configMapName } };
}

/**
 * A role's bootstrap (the `bootstrap` command's), plus a listener that exposes only the admin's
 * `GET /ready` on all addresses: the kubelet probes the pod IP, and the admin stays on loopback.
 */
export function sidecarBootstrap(role: InjectRole, xdsAddress: string): Record<string, unknown> {
  const { admin, ready } = ports[role];
  const bootstrap = buildBootstrap({
    role,
    nodeId: 'set-by-service-node',
    xdsAddress,
    adminAddress: `127.0.0.1:${admin}`,
    ...(role === 'originate' ? { listenAddress: originateListenAddress } : {}),
  });
  const statics = bootstrap.static_resources as { clusters: unknown[]; listeners?: unknown[] };
  statics.clusters.push({
    name: 'envoy-admin',
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: 'envoy-admin',
      endpoints: [
        {
          lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: admin } } } }],
        },
      ],
    },
  });
  statics.listeners = [readyListener(ready)];
  const problems = checkBootstrap(bootstrap);
  if (problems.length > 0) throw new Error(`generated ${role} bootstrap is invalid: ${problems.join('; ')}`);
  return bootstrap;
}

const hcmType = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

function readyListener(port: number): Record<string, unknown> {
  return {
    name: 'envoy-ready',
    address: { socket_address: { address: '0.0.0.0', port_value: port } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': `type.googleapis.com/${hcmType}`,
              stat_prefix: 'envoy_ready',
              route_config: {
                virtual_hosts: [
                  {
                    name: 'ready',
                    domains: ['*'],
                    routes: [
                      {
                        match: { path: '/ready', headers: [{ name: ':method', string_match: { exact: 'GET' } }] },
                        route: { cluster: 'envoy-admin' },
                      },
                    ],
                  },
                ],
              },
              http_filters: [
                {
                  name: 'envoy.filters.http.router',
                  typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
                },
              ],
            },
          },
        ],
      },
    ],
  };
}

/** The ConfigMap every injected pod of a namespace mounts: one bootstrap per role. */
export function bootstrapConfigMap(
  namespace: string,
  xdsAddress: string,
  stringify: (v: unknown) => string,
): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: configMapName, namespace, labels: { 'app.kubernetes.io/part-of': 'tunnel-shim' } },
    data: Object.fromEntries(injectRoles.map((r) => [`${r}.yaml`, stringify(sidecarBootstrap(r, xdsAddress))])),
  };
}
