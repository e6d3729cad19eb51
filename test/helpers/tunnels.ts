// A minimal model tunnel for make-before-break tests: a Service in namespace `ns` with endpoints at
// `addresses` (port 9000), tunneled over h2 to port 15008 by sidecars.
import type { Tunnel } from '../../src/model/tunnel.js';

export function tunnel(key: string, ...addresses: string[]): Tunnel {
  return {
    key,
    service: { kind: 'Service', namespace: 'ns', name: key },
    portName: 'tcp',
    port: 7000,
    authority: `${key}.ns.svc.cluster.local:7000`,
    settings: { mode: 'h2', tunnelPort: 15008, placement: 'sidecar' },
    endpoints: addresses.map((address) => ({ address, port: 9000 })),
  } as Tunnel;
}
