// `tunnel-shim bootstrap`: a complete Envoy bootstrap for one role, so nobody writes one by hand.
import { isIP } from 'node:net';
import YAML from 'yaml';
import { splitHostPort } from '../admin/http.js';
import { NodeMetadata, roles, type Role } from '../translate/view.js';
import { validateMessage } from '../envoy/validate.js';
import { fromEnvoyJson } from '../envoy/json.js';
import { lookupType } from '../envoy/protos.js';
import { isHostPort } from '../xds/node.js';
import { externalSdsCluster } from '../translate/tls.js';
import { errorMessage } from '../errors.js';

export interface BootstrapOptions {
  role: Role;
  nodeId: string;
  nodeCluster?: string;
  xdsAddress: string;
  listenAddress?: string;
  /** Envoy's own admin; the default depends on the role (defaultAdminAddress), so two roles share a host. */
  adminAddress?: string;
  accessLog?: string;
  /** Relay only: where plain HTTP requests go. */
  relayHttpBackend?: string;
  /** Incremental xDS (DeltaAggregatedResources) instead of state of the world. */
  delta?: boolean;
  /** `ns/sa`: the identity the node claims (node metadata; believed only by `serve --insecure-identities`). */
  identity?: string;
  /** `unix:PATH`: an SDS server (a SPIRE agent) the node's certificates come from; adds its cluster. */
  sds?: string;
  /** xDS over mutual TLS. */
  xdsTls?: XdsTlsBootstrap;
}

export interface XdsTlsBootstrap {
  /** The Envoy's certificate, key, and the CA that issued the shim's (PEM files, read when Envoy starts). */
  certFile: string;
  keyFile: string;
  caFile: string;
  /** The URI SAN the shim's certificate must carry. */
  serverIdentity: string;
}

/** The xDS cluster's TLS: the node's certificate, and the shim's checked against the CA and its SPIFFE ID. */
function xdsTransportSocket(tls: XdsTlsBootstrap, host: string) {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
      // SNI only for a DNS name (an IP is no server name); the shim is verified by its URI SAN either way.
      ...(isIP(host) ? {} : { sni: host }),
      common_tls_context: {
        alpn_protocols: ['h2'],
        tls_certificates: [{ certificate_chain: { filename: tls.certFile }, private_key: { filename: tls.keyFile } }],
        validation_context: {
          trusted_ca: { filename: tls.caFile },
          match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: tls.serverIdentity } }],
        },
      },
    },
  };
}

/** One default admin port per role: an originator and a terminator on one laptop do not collide. */
export const defaultAdminAddress: Record<Role, string> = {
  originate: '127.0.0.1:9901',
  terminate: '127.0.0.1:9902',
  relay: '127.0.0.1:9903',
};

/**
 * How to start Envoy with a bootstrap: a second Envoy on the same host also needs its own hot-restart
 * base id (else "unable to bind domain socket with base_id=0"), which only the command line can set.
 */
const envoyRunFlags = '--use-dynamic-base-id';

/** The YAML `bootstrap` prints: the bootstrap under a comment saying how to start Envoy with it. */
export function bootstrapYaml(bootstrap: Record<string, unknown>): string {
  type Admin = { address: { socket_address: { address: string; port_value: number } } };
  const admin = (bootstrap.admin as Admin).address.socket_address;
  return [
    `# Start with: envoy -c THIS_FILE ${envoyRunFlags}   (in a clone of tunnel-shim, envoy is .venv/envoy)`,
    `# ${envoyRunFlags} lets several Envoys share a host; this one's admin is ${admin.address}:${admin.port_value}.`,
    YAML.stringify(bootstrap, { aliasDuplicateObjects: false }),
  ].join('\n');
}

export function buildBootstrap(o: BootstrapOptions): Record<string, unknown> {
  if (!roles.includes(o.role)) throw new Error(`--role must be one of ${roles.join(', ')}`);
  if (o.listenAddress && isIP(o.listenAddress) === 0)
    throw new Error(`--listen-address ${o.listenAddress} is not an IP address`);
  const xds = splitHostPort(o.xdsAddress);
  const admin = splitHostPort(o.adminAddress ?? defaultAdminAddress[o.role]);
  const metadata: Record<string, string> = { [NodeMetadata.role]: o.role };
  if (o.listenAddress) metadata[NodeMetadata.listenAddress] = o.listenAddress;
  if (o.accessLog) metadata[NodeMetadata.accessLog] = o.accessLog;
  if (o.relayHttpBackend) {
    if (o.role !== 'relay') throw new Error('--relay-http-backend is for --role relay');
    if (!isHostPort(o.relayHttpBackend)) throw new Error(`--relay-http-backend ${o.relayHttpBackend} is not IP:PORT`);
    metadata[NodeMetadata.relayHttpBackend] = o.relayHttpBackend;
  }
  if (o.identity) {
    if (!/^[a-z0-9-]+\/[a-z0-9.-]+$/.test(o.identity))
      throw new Error(`--identity ${o.identity}: expected NAMESPACE/SERVICEACCOUNT`);
    metadata[NodeMetadata.identity] = o.identity;
  }
  if (o.sds) {
    if (!/^unix:\/\S+$/.test(o.sds)) throw new Error(`--sds ${o.sds}: expected unix:/PATH`);
    metadata[NodeMetadata.sds] = o.sds;
  }
  return {
    node: { id: o.nodeId, cluster: o.nodeCluster ?? `tunnel-shim-${o.role}`, metadata },
    dynamic_resources: {
      ads_config: {
        api_type: o.delta ? 'DELTA_GRPC' : 'GRPC',
        transport_api_version: 'V3',
        grpc_services: [{ envoy_grpc: { cluster_name: 'tunnel-shim-xds' } }],
        set_node_on_first_message_only: true,
      },
      cds_config: { ads: {}, resource_api_version: 'V3' },
      lds_config: { ads: {}, resource_api_version: 'V3' },
    },
    static_resources: {
      clusters: [
        {
          name: 'tunnel-shim-xds',
          type: isIP(xds.host) ? 'STATIC' : 'STRICT_DNS',
          connect_timeout: '1s',
          load_assignment: {
            cluster_name: 'tunnel-shim-xds',
            endpoints: [
              {
                lb_endpoints: [
                  { endpoint: { address: { socket_address: { address: xds.host, port_value: xds.port } } } },
                ],
              },
            ],
          },
          ...(o.xdsTls ? { transport_socket: xdsTransportSocket(o.xdsTls, xds.host) } : {}),
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
              explicit_http_config: {
                http2_protocol_options: { connection_keepalive: { interval: '30s', timeout: '5s' } },
              },
            },
          },
        },
        ...(o.sds ? [sdsCluster(o.sds.slice('unix:'.length))] : []),
      ],
    },
    admin: { address: { socket_address: { address: admin.host, port_value: admin.port } } },
  };
}

/** The static cluster of an external SDS server on a Unix socket (gRPC: HTTP/2). */
function sdsCluster(path: string) {
  return {
    name: externalSdsCluster,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: externalSdsCluster,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { pipe: { path } } } }] }],
    },
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicit_http_config: { http2_protocol_options: {} },
      },
    },
  };
}

/** Checks the bootstrap against Envoy's own proto and PGV rules before anyone starts Envoy with it. */
export function checkBootstrap(bootstrap: Record<string, unknown>): string[] {
  const type = lookupType('envoy.config.bootstrap.v3.Bootstrap');
  try {
    const protoForm = fromEnvoyJson(type, bootstrap);
    const violations = validateMessage('envoy.config.bootstrap.v3.Bootstrap', protoForm).map(
      (v) => `${v.path} ${v.message}`,
    );
    if (violations.length === 0) type.encode(type.fromObject(protoForm));
    return violations;
  } catch (err) {
    return [errorMessage(err)];
  }
}
