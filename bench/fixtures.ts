// The benchmark's Services: N annotated Services with 3 ready endpoints each, spread over a pool of
// 100 pod addresses (10.1.0.1-100), one terminating Envoy beside each pod (bound to its address).
import type { SourcedObject } from '../src/model/objects.js';

export const podCount = 100;
export const podAddress = (p: number) => `10.1.0.${p + 1}`;

export function clusterIP(i: number): string {
  return `10.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
}

/**
 * Service i and its EndpointSlice; `moved` replaces the first endpoint's address (a change); `name`
 * (default s<i>) names a Service that a scenario adds and removes.
 */
export function serviceObjects(i: number, moved?: string, name = `s${i}`): SourcedObject[] {
  const ips = [0, 1, 2].map((j) => podAddress((i * 3 + j) % podCount));
  if (moved) ips[0] = moved;
  return [
    {
      object: {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name, namespace: 'bench', annotations: { 'tunnel-shim.io/tunnel': 'h2' } },
        spec: { clusterIP: clusterIP(i), ports: [{ name: 'tcp', port: 10000 + (i % 50000) }] },
      },
    },
    {
      object: {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name: `${name}-1`, namespace: 'bench', labels: { 'kubernetes.io/service-name': name } },
        addressType: 'IPv4',
        ports: [{ name: 'tcp', port: 8080 }],
        endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true } })),
      },
    },
  ];
}

/** The address change k moves an endpoint to: unique per change, so a response carrying it is unmistakable. */
export function markerAddress(k: number): string {
  return `10.200.${(k >> 8) & 255}.${k & 255}`;
}

/** The name of the k-th Service a scenario adds (found in responses as `/added-<k>/`). */
export const addedName = (k: number) => `added-${k}`;
