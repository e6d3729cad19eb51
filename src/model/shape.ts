// The shape of the fields the model reads, checked before it reads them: a YAML file can hold any
// structure (ports as a mapping, a label that is a list), and one odd object must be an error naming
// its field, never an exception that stops every other object from being served.
import type { FieldPath, KubeObject } from './objects.js';

type Shape = 'string' | 'scalar' | 'bool' | { fields: Record<string, Shape> } | { list: Shape } | { map: Shape };

const what = (s: Shape): string =>
  typeof s === 'string'
    ? s === 'scalar'
      ? 'a string or number'
      : s === 'bool'
        ? 'true or false'
        : 'a string'
    : 'fields' in s
      ? 'a mapping'
      : 'list' in s
        ? 'a list'
        : 'a mapping of strings';

function problem(value: unknown, shape: Shape, path: FieldPath): { path: FieldPath; message: string } | undefined {
  if (value === undefined || value === null) return undefined;
  const bad = { path, message: `must be ${what(shape)}` };
  if (shape === 'string') return typeof value === 'string' ? undefined : bad;
  if (shape === 'scalar') return ['string', 'number', 'boolean'].includes(typeof value) ? undefined : bad;
  if (shape === 'bool') return typeof value === 'boolean' ? undefined : bad;
  if ('list' in shape) {
    if (!Array.isArray(value)) return bad;
    for (const [i, item] of value.entries()) {
      const found = problem(item, shape.list, [...path, i]);
      if (found) return found;
    }
    return undefined;
  }
  if (typeof value !== 'object' || Array.isArray(value)) return bad;
  for (const [key, item] of Object.entries(value)) {
    const inner = 'map' in shape ? shape.map : shape.fields[key];
    const found = inner && problem(item, inner, [...path, key]);
    if (found) return found;
  }
  return undefined;
}

const fields = (f: Record<string, Shape>): Shape => ({ fields: f });
const listOf = (f: Record<string, Shape>): Shape => ({ list: { fields: f } });
const metadata = fields({
  name: 'string',
  namespace: 'string',
  labels: { map: 'string' },
  annotations: { map: 'scalar' },
});
const byKind: Record<string, Shape> = {
  Service: fields({
    metadata,
    spec: fields({ clusterIP: 'string', ports: listOf({ name: 'string', port: 'scalar', protocol: 'string' }) }),
  }),
  EndpointSlice: fields({
    metadata,
    addressType: 'string',
    ports: listOf({ name: 'string', port: 'scalar' }),
    endpoints: listOf({
      addresses: { list: 'string' },
      conditions: fields({ ready: 'bool' }),
      targetRef: fields({ kind: 'string', name: 'string', namespace: 'string' }),
    }),
  }),
  Pod: fields({ metadata, status: fields({ podIP: 'string', podIPs: listOf({ ip: 'string' }) }) }),
  TCPRoute: fields({ metadata }),
};

// Module-level, yet invisible: a pure check of an object, which is never modified.
const checked = new WeakMap<KubeObject, { path: FieldPath; message: string } | undefined>();

/** The first field of `object` whose shape the model cannot read, and why (once per object). */
export function shapeProblem(object: KubeObject): { path: FieldPath; message: string } | undefined {
  if (checked.has(object)) return checked.get(object);
  const shape = byKind[String(object.kind)];
  const found = shape && problem(object, shape, []);
  checked.set(object, found);
  return found;
}
