// Property-based fuzzing of the input side: every annotation parser (each row of the annotation table,
// so new rows are fuzzed too) and the file source (random and mutated YAML, bytes that are not UTF-8).
// Properties: nothing throws, and nothing served fails the resource check; served resources go, a batch
// at a time, through a real `envoy --mode validate` (envoy-check.ts).
import fc from 'fast-check';
import YAML from 'yaml';
import { annotationTable, fallbackPolicies, lbPolicies, placements, tunnelModes } from '../../src/model/annotation-table.js';
import { parseTunnelSettings } from '../../src/model/annotations.js';
import { formatDiagnostic } from '../../src/model/diagnostics.js';
import type { KubeObject } from '../../src/model/objects.js';
import { render, type Rendered } from '../../src/render.js';
import { decodeUtf8, parseYamlPortable, withLines } from '../../src/sources/yaml.js';
import { roles, type Role } from '../../src/translate/view.js';

const commands = ['REQUESTED_SERVER_NAME', 'DOWNSTREAM_REMOTE_ADDRESS', 'UPSTREAM_HOST', 'REQ(:AUTHORITY)', 'START_TIME(%Y)', 'NOPE', 'REQ', 'CONNECTION_ID:5'];
const hostChars = [...'abcz09.-_~:[]*%!$&\'()+,;= \t\u0000\u0007\u007f\u00fc\u3042/\\@#?'];

const digits = fc.stringMatching(/^\d{1,25}$/);
const durationish = fc.tuple(digits, fc.option(fc.stringMatching(/^\d{1,12}$/)), fc.constantFrom('ms', 's', 'm', 'h', '', 'us', 'd'))
  .map(([n, f, u]) => `${n}${f === null ? '' : `.${f}`}${u}`);
const hostish = fc.array(fc.constantFrom(...hostChars, 'a', 'b', '.', 'example', 'com'), { maxLength: 12 }).map((p) => p.join(''));
const authorityish = fc.tuple(fc.constantFrom('', '*', '*.', '['), hostish, fc.option(fc.oneof(fc.integer({ min: -1, max: 70000 }).map(String), digits)))
  .map(([pre, host, port]) => `${pre}${host}${port === null ? '' : `:${port}`}`);
const formatish = fc.array(fc.oneof(hostish, fc.constantFrom(...commands).map((c) => `%${c}%`), fc.constant('%')), { maxLength: 4 }).map((p) => p.join(''));
const anyText = fc.oneof(fc.string({ unit: 'binary', maxLength: 30 }), fc.string({ unit: 'grapheme', maxLength: 30 }), fc.string({ maxLength: 30 }));
const scalarish = fc.oneof(anyText, formatish, hostish, fc.integer().map(String), fc.constantFrom('true', 'false', 'null', '~', '[]', '{}'));
const mapish = fc.array(fc.tuple(fc.oneof(fc.constantFrom('x-tenant', 'env', 'app', 'Bad Header', ':path', 'host', 'a/b', '-x'), anyText), scalarish), { maxLength: 3 })
  .map((pairs) => `{${pairs.map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(', ')}}`);
const pathish = fc.array(fc.constantFrom('/', 'a', 'tunnel', '%', ' ', '?', '..', '\u0000', '~'), { maxLength: 6 }).map((p) => p.join(''));
const enumish = fc.constantFrom(...tunnelModes, ...placements, ...lbPolicies, ...fallbackPolicies, 'source-ip', 'cookie', 'H2', ' h2 ');
const numberish = fc.oneof(fc.integer({ min: -5, max: 70_000 }), fc.constantFrom(0, 1, 100, 101, 2147483647, 2147483648)).map(String);

/** A value for any annotation: each kind of value (valid and not) reaches every row. */
export const annotationValue: fc.Arbitrary<string> = fc.oneof(
  durationish, authorityish, formatish, mapish, pathish, enumish, numberish, anyText,
  fc.constantFrom('/dev/stdout', '/var/log/t.log', 'relative.log', '/a/../b', 'a.example.com:443, *.b.example.com:443', '*', '{env: hema}', '1s', '500ms', '15009'),
);

/** Values some row accepts; each row's own examples are those it parses (so new rows get theirs too). */
const examplePool = [
  '1s', '500ms', '5m', '1h', '0s', '1.5s', '9223372035.999999999s', '2562047h', '9223372036s', '0.000001ms', '1', '3', '100', '2147483647', '15009', '65535',
  'true', 'false', ...tunnelModes, ...placements, ...lbPolicies, ...fallbackPolicies, 'source-ip', '/', '/tunnels/db',
  'db.internal.example:5432', '[fd00::1]:443', '%REQUESTED_SERVER_NAME%:443', 'a.example.com:443, *.b.example.com:443', '*:1234',
  '{env: hema}', '{x-tenant: blue, x-client: "%DOWNSTREAM_REMOTE_ADDRESS%"}', '/dev/stdout', '/var/log/t.log',
  '%CONNECTION_ID% %UPSTREAM_HOST% %REQ(:AUTHORITY)%',
];
const hostile = fc.constantFrom(' ', '\t', '\u0000', '\u0007', '\n', '\u007f', '\ud800', '\udc00', '*', '%', ':', '[', ']', ',', '{', '"', '\u00fc', '9', '.', '0');
/** A valid value with one character inserted or replaced: the near misses a parser must catch. */
const nearMiss = (examples: string[]) => fc.tuple(fc.constantFrom(...examples), fc.nat(), hostile, fc.boolean())
  .map(([v, at, c, replace]) => v.slice(0, at % (v.length + 1)) + c + v.slice((at % (v.length + 1)) + (replace ? 1 : 0)));

/** `valid`: how often (of 10) a row gets one of its own examples; the rest are near misses and noise. */
function rowValue(key: string, valid: number): fc.Arbitrary<string> {
  const row = annotationTable[key];
  const examples = row ? examplePool.filter((v) => !('error' in row.parse(v))) : key === 'tunnel-shim.io/tunnel' ? [...tunnelModes, ''] : [];
  if (examples.length === 0) return annotationValue;
  const rest = 10 - valid;
  return fc.oneof({ weight: valid, arbitrary: fc.constantFrom(...examples) }, { weight: Math.ceil(rest / 2), arbitrary: nearMiss(examples) }, { weight: Math.floor(rest / 2), arbitrary: annotationValue });
}

const keys = ['tunnel-shim.io/tunnel', ...Object.keys(annotationTable), 'tunnel-shim.io/unknown'];
const annotationsOf = (valid: number) => fc.array(fc.constantFrom(...keys).chain((key) => rowValue(key, valid).map((value) => [key, value] as const)), { maxLength: 4 })
  .map((entries) => Object.fromEntries(entries));


const dnsName = fc.oneof({ weight: 8, arbitrary: fc.stringMatching(/^[a-z][a-z0-9-]{0,10}[a-z0-9]$/) }, { weight: 1, arbitrary: anyText });
const ipv4 = fc.tuple(fc.constant(10), fc.nat(255), fc.nat(255), fc.integer({ min: 1, max: 254 })).map((p) => p.join('.'));

interface ServiceInput { name: string; namespace: string; annotations: Record<string, string>; clusterIP: string; ports: number[]; endpoints: string[] }

const serviceInput = (valid = 5): fc.Arbitrary<ServiceInput> => fc.record({
  name: dnsName,
  namespace: fc.oneof({ weight: 6, arbitrary: fc.constant('fz') }, { weight: 1, arbitrary: dnsName }),
  annotations: annotationsOf(valid).map((a) => ({ 'tunnel-shim.io/tunnel': 'h2', ...a })),
  clusterIP: fc.oneof({ weight: 6, arbitrary: ipv4 }, { weight: 1, arbitrary: anyText }),
  ports: fc.array(fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 65535 }) }, { weight: 1, arbitrary: fc.integer({ min: -1, max: 70_000 }) }), { minLength: 1, maxLength: 2 }),
  endpoints: fc.array(ipv4, { maxLength: 3 }),
});

/** The YAML a user would write for one Service and its EndpointSlice. */
export function serviceDocs(s: ServiceInput): unknown[] {
  const ports = s.ports.map((port, i) => ({ name: `p${i}`, port }));
  return [
    { apiVersion: 'v1', kind: 'Service', metadata: { name: s.name, namespace: s.namespace, annotations: s.annotations }, spec: { clusterIP: s.clusterIP, ports } },
    {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
      metadata: { name: `${s.name}-1`, namespace: s.namespace, labels: { 'kubernetes.io/service-name': s.name } },
      addressType: 'IPv4', ports: ports.map((p) => ({ name: p.name, port: 9000 })), endpoints: s.endpoints.map((ip) => ({ addresses: [ip], conditions: { ready: true } })),
    },
  ];
}

/** Mutations of a valid file's text: what an editor, a bad merge or an attacker leaves behind. */
const mutation = fc.oneof(
  fc.record({ at: fc.nat(), del: fc.nat(20), insert: fc.oneof(anyText, fc.constantFrom(':', '- ', '{', '[', '"', "'", '&a ', '*a', '!!binary ', '---\n', '\n  ', '\t', '? ', '|', '>', '%YAML 1.2\n', '\\ud800')) }),
);

/** Bytes of a file: a valid multi-document file, mutated, sometimes with bytes that are not UTF-8. */
export const yamlFileBytes: fc.Arbitrary<Buffer> = fc.tuple(
  fc.array(serviceInput(), { minLength: 1, maxLength: 3 }),
  fc.array(mutation, { maxLength: 2 }),
  fc.option(fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 3 })), { freq: 4 }),
).map(([services, mutations, raw]) => {
  let text = services.flatMap(serviceDocs).map((d) => YAML.stringify(d)).join('---\n');
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
export const serviceBatch = fc.uniqueArray(serviceInput(8), { minLength: 5, maxLength: 20, selector: (s) => s.name })
  .map((list) => list.map((s, i) => ({ ...s, namespace: 'fz', clusterIP: `10.96.${i}.1`, ports: [20000 + i] })));

/** What a property found wrong, or undefined: a resource the resource check refused means a value got past its parser. */
function refused(rendered: Rendered): string | undefined {
  const bad = rendered.diagnostics.find((d) => d.reason === 'InvalidResource');
  return bad && formatDiagnostic(bad);
}

export function renderAll(objects: unknown[]): Record<Role, Rendered> {
  const state = { objects: objects.map((object) => ({ object: object as KubeObject })), diagnostics: [] };
  return Object.fromEntries(roles.map((role) => [role, render(state, { role })])) as Record<Role, Rendered>;
}

export interface FuzzCounts { annotationCases: number; fileCases: number; filesThatParsed: number; servicesServed: number }

/** Runs both properties; throws (with fast-check's counterexample and seed) on the first failure. */
export function fuzzInputs(options: { seed: number; runs: number }): FuzzCounts {
  const counts: FuzzCounts = { annotationCases: 0, fileCases: 0, filesThatParsed: 0, servicesServed: 0 };
  const params = { seed: options.seed, numRuns: options.runs, endOnFailure: true };
  fc.assert(fc.property(fc.array(serviceInput(), { minLength: 1, maxLength: 3 }), (services) => {
    counts.annotationCases++;
    for (const s of services) parseTunnelSettings(s.annotations);
    const rendered = renderAll(services.flatMap(serviceDocs));
    counts.servicesServed += rendered.originate.resources.listeners.length;
    const problem = roles.map((r) => refused(rendered[r])).find(Boolean);
    if (problem) throw new Error(`a value got past its parser: ${problem}`);
  }), params);
  fc.assert(fc.property(yamlFileBytes, (bytes) => {
    counts.fileCases++;
    const decoded = decodeUtf8('fuzz.yaml', bytes);
    if ('error' in decoded) return;
    const file = withLines('fuzz.yaml', parseYamlPortable('fuzz.yaml', decoded.text));
    if (!file.broken) counts.filesThatParsed++;
    for (const role of roles) {
      const problem = refused(render({ objects: file.objects, diagnostics: [] }, { role }));
      if (problem) throw new Error(`a value got past its parser: ${problem}`);
    }
  }), params);
  return counts;
}
