// Builds the YAML a user would write: an annotated Service and its EndpointSlice.
import YAML from 'yaml';

export interface ServiceSpec {
  name: string;
  namespace?: string;
  clusterIP?: string;
  port: number;
  portName?: string;
  annotations?: Record<string, string>;
  endpoints?: { ip: string; port: number }[];
}

export function serviceYaml(s: ServiceSpec): string {
  const namespace = s.namespace ?? 'default';
  const portName = s.portName ?? 'tcp';
  const docs: unknown[] = [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: s.name, namespace, annotations: { 'tunnel-shim.io/tunnel': 'h2', ...s.annotations } },
      spec: { clusterIP: s.clusterIP ?? '10.96.0.1', ports: [{ name: portName, port: s.port }] },
    },
  ];
  const byPort = new Map<number, string[]>();
  for (const e of s.endpoints ?? []) byPort.set(e.port, [...(byPort.get(e.port) ?? []), e.ip]);
  let i = 0;
  for (const [port, ips] of byPort) {
    docs.push({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${s.name}-${i++}`, namespace, labels: { 'kubernetes.io/service-name': s.name } },
      addressType: 'IPv4',
      ports: [{ name: portName, port }],
      endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true } })),
    });
  }
  return docs.map((d) => YAML.stringify(d)).join('---\n');
}

/** A Pod as the sources deliver it: labels and its IP, which is how endpoints find their labels. */
export function podYaml(p: { name: string; namespace?: string; ip: string; labels: Record<string, string> }): string {
  return YAML.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: p.name, namespace: p.namespace ?? 'default', labels: p.labels },
    status: { podIP: p.ip },
  });
}
