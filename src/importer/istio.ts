// Reading Istio's names and Envoy's JSON the way EnvoyFilter authors write them.

/** Free-form YAML read untyped: EnvoyFilter patches have no schema the importer could lean on. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Yaml = any;

/** A field by its proto name or its lowerCamelCase JSON name (Istio accepts both in EnvoyFilter patches). */
export function field(object: unknown, snake: string): Yaml {
  if (object === null || typeof object !== 'object') return undefined;
  const o = object as Record<string, unknown>;
  if (o[snake] !== undefined) return o[snake];
  return o[snake.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase())];
}

export interface ServiceRef {
  namespace: string;
  name: string;
  port: number;
}

export interface IstioCluster extends ServiceRef {
  /** DestinationRule subset named in an outbound cluster (`outbound|9000|v2|host`). */
  subset?: string;
}

/** `name.namespace.svc[.cluster domain]` to a Service, or undefined for any other host. */
export function serviceOfHost(host: string): { namespace: string; name: string } | undefined {
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc(\..+)?$/.exec(host);
  return m ? { name: m[1]!, namespace: m[3]! } : undefined;
}

/** Istio's cluster names: `outbound|PORT|SUBSET|HOST`, `inbound|PORT||`, `inbound-vip|PORT|PROTOCOL|HOST`. */
export function parseIstioCluster(name: string): IstioCluster | undefined {
  const m = /^(outbound|inbound-vip)\|(\d+)\|([^|]*)\|(.+)$/.exec(name);
  if (!m) return undefined;
  const service = serviceOfHost(m[4]!);
  if (!service) return undefined;
  const subset = m[1] === 'outbound' && m[3] ? m[3] : undefined;
  return { ...service, port: Number(m[2]), ...(subset ? { subset } : {}) };
}

/** Kubernetes object names are DNS labels: anything else is folded into one. */
export function dnsLabel(text: string): string {
  return (
    text
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 63) || 'imported'
  );
}
