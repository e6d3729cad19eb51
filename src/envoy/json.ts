// Envoy's JSON/YAML form (proto3 JSON mapping with the protos' snake_case names: durations as "5s",
// Struct as plain JSON, wrappers as bare values, Any with "@type") to the object form protobufjs encodes.
// Resources are written, shown and golden-tested in the form Envoy users read; only encoding converts.
import protobuf from 'protobufjs';
import { fullNameOf, lookupType } from './protos.js';

const wrappers = new Set(
  [
    'DoubleValue',
    'FloatValue',
    'Int64Value',
    'UInt64Value',
    'Int32Value',
    'UInt32Value',
    'BoolValue',
    'StringValue',
    'BytesValue',
  ].map((n) => `.google.protobuf.${n}`),
);

export function parseProtoDuration(text: string): { seconds: number; nanos: number } {
  const m = /^(-?)(\d+)(?:\.(\d{1,9}))?s$/.exec(text);
  if (!m) throw new Error(`${JSON.stringify(text)} is not a duration like "1.5s"`);
  const sign = m[1] ? -1 : 1;
  return { seconds: sign * Number(m[2]), nanos: sign * Number((m[3] ?? '').padEnd(9, '0')) };
}

function structValue(v: unknown): Record<string, unknown> {
  if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(structValue) } };
  return { structValue: struct(v as Record<string, unknown>) };
}

function struct(v: Record<string, unknown>): Record<string, unknown> {
  return { fields: Object.fromEntries(Object.entries(v).map(([k, x]) => [k, structValue(x)])) };
}

/** Converts a value of `type` from Envoy JSON form to protobufjs object form. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- protobufjs object form: its shape is the type's
export function fromEnvoyJson(type: protobuf.Type, value: unknown, path = ''): any {
  const name = fullNameOf(type);
  if (name === '.google.protobuf.Duration') return typeof value === 'string' ? parseProtoDuration(value) : value;
  if (name === '.google.protobuf.Struct') return struct(value as Record<string, unknown>);
  if (name === '.google.protobuf.Value') return structValue(value);
  if (wrappers.has(name)) return value !== null && typeof value === 'object' ? value : { value };
  if (value === null || typeof value !== 'object') throw new Error(`${path || type.name}: expected an object`);
  const object = value as Record<string, unknown>;
  if (name === '.google.protobuf.Any') {
    const url = object['@type'];
    if (typeof url !== 'string') throw new Error(`${path}: Any needs "@type"`);
    const { ['@type']: _t, ...rest } = object;
    return { '@type': url, ...fromEnvoyJson(lookupType(url.slice(url.lastIndexOf('/') + 1)), rest, path) };
  }
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(object)) {
    const field = type.fields[key];
    if (!field) throw new Error(`${path ? `${path}.` : ''}${key}: no such field in ${fullNameOf(type).slice(1)}`);
    const here = path ? `${path}.${key}` : key;
    field.resolve();
    const inner = field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined;
    if (!inner || v === undefined) out[key] = v;
    else if (field instanceof protobuf.MapField)
      out[key] = Object.fromEntries(
        Object.entries(v as object).map(([k, x]) => [k, fromEnvoyJson(inner, x, `${here}.${k}`)]),
      );
    else if (field.repeated) out[key] = (v as unknown[]).map((x, i) => fromEnvoyJson(inner, x, `${here}[${i}]`));
    else out[key] = fromEnvoyJson(inner, v, here);
  }
  return out;
}
