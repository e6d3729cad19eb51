// The cluster that carries a Service's tunnels to its terminators, and its endpoints: used by
// originators and relays alike. HTTP/2 (or HTTP/1.1) to each terminator address, pooled, with the
// Service's authority in its metadata.
import type { ResourceObject } from '../envoy/encode.js';
import type { Tunnel } from '../model/tunnel.js';
import { bufferLimit, tunnelHttp2Options } from './connection-options.js';
import { adsConfigSource, duration, socketAddress, typeOf } from './envoy-fields.js';
import { endpointMetadata, subsetConfig } from './subsets.js';
import { upstreamTransportSocket } from './tls.js';
import type { NodeView } from './view.js';

/** Cluster metadata carrying the CONNECT authority. */
const metadataNamespace = 'tunnel_shim';

/**
 * A `tunneling_config.hostname` naming the authority of the cluster the connection goes to: Envoy
 * evaluates it after a split picked its cluster, so the terminator learns which backend was chosen.
 */
export const clusterAuthority = `%CLUSTER_METADATA(${metadataNamespace}:authority)%`;

/**
 * How long an originator or relay waits for a TCP connection to a terminator: one lost SYN is
 * retransmitted after 1 s and still makes it; a blackholed terminator fails the tunnel in 2 s.
 */
const connectTimeoutMs = 2000;

/**
 * Sidecar placement: whoever sends the tunnel (originator or relay) picks the endpoint, so load
 * balancing and subsets live on this cluster. Gateway placement: the terminator picks.
 */
export const picksEndpoint = (t: Tunnel) => t.settings.placement === 'sidecar';

/** `certified`: the node surely has a certificate (translate/tls.ts `nodeCertified`), for auto mTLS. */
export function tunnelCluster(t: Tunnel, name: string, view: NodeView, certified: boolean): ResourceObject {
  const s = t.settings;
  const tls = upstreamTransportSocket(t, view, certified);
  const http = s.mode === 'h1' ? { http_protocol_options: {} } : { http2_protocol_options: tunnelHttp2Options(s) };
  const subsets = picksEndpoint(t) ? subsetConfig(s) : undefined;
  return {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: adsConfigSource },
    connect_timeout: duration(connectTimeoutMs),
    per_connection_buffer_limit_bytes: bufferLimit(s),
    lb_policy: (picksEndpoint(t) ? s.lbPolicy : undefined) ?? 'ROUND_ROBIN',
    ...(subsets ? { lb_subset_config: subsets } : {}),
    metadata: { filter_metadata: { [metadataNamespace]: { authority: t.authority } } },
    ...(tls ? { transport_socket: tls } : {}),
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': typeOf.httpProtocolOptions,
        explicit_http_config: http,
      },
    },
  };
}

/** One host per terminator address: the terminator beside an endpoint listens on its IP. */
export function tunnelEndpoints(t: Tunnel, name: string): ResourceObject {
  const addresses = [...new Set(t.endpoints.map((e) => e.address))];
  const lbEndpoints = addresses.map((a) => {
    const metadata = picksEndpoint(t)
      ? endpointMetadata(t.settings, t.endpoints.find((e) => e.address === a)?.labels)
      : undefined;
    return { endpoint: { address: socketAddress(a, t.settings.tunnelPort) }, ...(metadata ? { metadata } : {}) };
  });
  return { cluster_name: name, endpoints: addresses.length === 0 ? [] : [{ lb_endpoints: lbEndpoints }] };
}
