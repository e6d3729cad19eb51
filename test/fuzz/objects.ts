// Fuzzed input objects: Services with random annotations and their EndpointSlices, the YAML files that
// hold them (mutated, sometimes with bytes that are not UTF-8), and batches for one Envoy run each.
import fc from 'fast-check';
import YAML from 'yaml';
import { annotationsOf, anyText } from './values.js';

const dnsName = fc.oneof(
  { weight: 8, arbitrary: fc.stringMatching(/^[a-z][a-z0-9-]{0,10}[a-z0-9]$/) },
  { weight: 1, arbitrary: anyText },
);
const ipv4 = fc
  .tuple(fc.constant(10), fc.nat(255), fc.nat(255), fc.integer({ min: 1, max: 254 }))
  .map((p) => p.join('.'));

export interface ServiceInput {
  name: string;
  namespace: string;
  annotations: Record<string, string>;
  clusterIP: string;
  ports: number[];
  endpoints: string[];
}

export const serviceInput = (valid = 5): fc.Arbitrary<ServiceInput> =>
  fc.record({
    name: dnsName,
    namespace: fc.oneof({ weight: 6, arbitrary: fc.constant('fz') }, { weight: 1, arbitrary: dnsName }),
    annotations: annotationsOf(valid).map((a) => ({ 'tunnel-shim.io/tunnel': 'h2', ...a })),
    clusterIP: fc.oneof({ weight: 6, arbitrary: ipv4 }, { weight: 1, arbitrary: anyText }),
    ports: fc.array(
      fc.oneof(
        { weight: 6, arbitrary: fc.integer({ min: 1, max: 65535 }) },
        { weight: 1, arbitrary: fc.integer({ min: -1, max: 70_000 }) },
      ),
      { minLength: 1, maxLength: 2 },
    ),
    endpoints: fc.array(ipv4, { maxLength: 3 }),
  });

/** The YAML a user would write for one Service and its EndpointSlice. */
export function serviceDocs(s: ServiceInput): unknown[] {
  const ports = s.ports.map((port, i) => ({ name: `p${i}`, port }));
  return [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: s.name, namespace: s.namespace, annotations: s.annotations },
      spec: { clusterIP: s.clusterIP, ports },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${s.name}-1`, namespace: s.namespace, labels: { 'kubernetes.io/service-name': s.name } },
      addressType: 'IPv4',
      ports: ports.map((p) => ({ name: p.name, port: 9000 })),
      endpoints: s.endpoints.map((ip) => ({ addresses: [ip], conditions: { ready: true } })),
    },
  ];
}

/** Mutations of a valid file's text: what an editor, a bad merge or an attacker leaves behind. */
const mutation = fc.oneof(
  fc.record({
    at: fc.nat(),
    del: fc.nat(20),
    insert: fc.oneof(
      anyText,
      fc.constantFrom(
        ':',
        '- ',
        '{',
        '[',
        '"',
        "'",
        '&a ',
        '*a',
        '!!binary ',
        '---\n',
        '\n  ',
        '\t',
        '? ',
        '|',
        '>',
        '%YAML 1.2\n',
        '\\ud800',
      ),
    ),
  }),
);

/** Bytes of a file: a valid multi-document file, mutated, sometimes with bytes that are not UTF-8. */
export const yamlFileBytes: fc.Arbitrary<Buffer> = fc
  .tuple(
    fc.array(serviceInput(), { minLength: 1, maxLength: 3 }),
    fc.array(mutation, { maxLength: 2 }),
    fc.option(fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 3 })), { freq: 4 }),
  )
  .map(([services, mutations, raw]) => {
    let text = services
      .flatMap(serviceDocs)
      .map((d) => YAML.stringify(d))
      .join('---\n');
    for (const m of mutations) {
      const at = m.at % (text.length + 1);
      text = text.slice(0, at) + m.insert + text.slice(at + m.del);
    }
    let bytes = Buffer.from(text);
    if (raw) {
      const at = raw[0] % (bytes.length + 1);
      bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(raw[1]), bytes.subarray(at)]);
    }
    // A counterexample reads as the file's text (bytes that are not UTF-8 as latin1 escapes).
    return Object.assign(bytes, { [fc.toStringMethod]: () => `file ${JSON.stringify(bytes.toString('latin1'))}` });
  });

/** A batch for one Envoy run: Services with distinct names and addresses, each with random annotations. */
export const serviceBatch = fc
  .uniqueArray(serviceInput(8), { minLength: 5, maxLength: 20, selector: (s) => s.name })
  .map((list) => list.map((s, i) => ({ ...s, namespace: 'fz', clusterIP: `10.96.${i}.1`, ports: [20000 + i] })));
