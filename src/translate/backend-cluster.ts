// Clusters to what a terminator delivers a tunnel's bytes to (the Service's backends), and to a relay's
// plain HTTP backend: TCP, no tunnel.
import type { ResourceObject } from '../envoy/encode.js';
import type { Tunnel } from '../model/tunnel.js';
import { bufferLimit } from './connection-options.js';
import { adsConfigSource, duration, socketAddress } from './envoy-fields.js';
import { endpointMetadata, subsetConfig } from './subsets.js';

const connectTimeoutMs = 5000;

/** A cluster of fixed hosts; `bufferLimit` per connection, when the hosts are one Service's backends. */
export function staticCluster(
  name: string,
  hosts: readonly { address: string; port: number }[],
  bufferLimit?: number,
): ResourceObject {
  return {
    name,
    type: 'STATIC',
    connect_timeout: duration(connectTimeoutMs),
    ...(bufferLimit !== undefined ? { per_connection_buffer_limit_bytes: bufferLimit } : {}),
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: hosts.map((h) => ({ endpoint: { address: socketAddress(h.address, h.port) } })) }],
    },
  };
}

/** Gateway placement: a cluster of all the Service's endpoints, balanced by the terminator. */
export function balancedBackendCluster(name: string, t: Tunnel): ResourceObject {
  const subsets = subsetConfig(t.settings);
  return {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: adsConfigSource },
    connect_timeout: duration(connectTimeoutMs),
    per_connection_buffer_limit_bytes: bufferLimit(t.settings),
    lb_policy: t.settings.lbPolicy ?? 'ROUND_ROBIN',
    ...(subsets ? { lb_subset_config: subsets } : {}),
  };
}

/** The endpoints of `balancedBackendCluster`, each with the Pod labels its subsets select on. */
export function balancedBackendEndpoints(name: string, t: Tunnel): ResourceObject {
  const lbEndpoints = t.endpoints.map((e) => {
    const metadata = endpointMetadata(t.settings, e.labels);
    return { endpoint: { address: socketAddress(e.address, e.port) }, ...(metadata ? { metadata } : {}) };
  });
  return { cluster_name: name, endpoints: lbEndpoints.length ? [{ lb_endpoints: lbEndpoints }] : [] };
}
