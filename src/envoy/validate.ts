// Checks a resource (in protobufjs object form, snake_case) against the protoc-gen-validate rules that
// Envoy's own protos carry as `(validate.rules)` field options. Envoy enforces the same rules on
// receipt; checking first means a bad resource becomes a diagnostic instead of a NACK.
import protobuf from 'protobufjs';
import { fullNameOf, lookupType } from './protos.js';

export interface Violation {
  path: string;
  message: string;
}

// protoc-gen-validate rules as protobufjs parses them: nested option objects of every rule kind.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Rules = Record<string, any>;

// Every field of every resource is looked at on each encode: its rules are found once.
const rulesByField = new WeakMap<protobuf.Field, Rules | null>();

function fieldRules(field: protobuf.Field): Rules | undefined {
  let rules = rulesByField.get(field);
  if (rules === undefined) {
    const parsed = field.parsedOptions as Record<string, unknown>[] | null | undefined;
    const entry = parsed?.find((o) => '(validate.rules)' in o);
    rules = (entry?.['(validate.rules)'] as Rules | undefined) ?? null;
    rulesByField.set(field, rules);
  }
  return rules ?? undefined;
}

function oneofRequired(oneof: protobuf.OneOf): boolean {
  return oneof.options?.['(validate.required)'] === true;
}

function isPresent(value: unknown): boolean {
  return value !== undefined && value !== null;
}

function durationNanos(value: unknown): bigint | undefined {
  if (!isPresent(value) || typeof value !== 'object') return undefined;
  const d = value as { seconds?: number | string | bigint; nanos?: number };
  return BigInt(d.seconds ?? 0) * 1_000_000_000n + BigInt(d.nanos ?? 0);
}

function compareBounds(
  path: string,
  actual: number | bigint,
  rules: Rules,
  toNumber: (v: unknown) => number | bigint,
  out: Violation[],
) {
  const bound = (name: string) => (isPresent(rules[name]) ? toNumber(rules[name]) : undefined);
  const gt = bound('gt');
  const gte = bound('gte');
  const lt = bound('lt');
  const lte = bound('lte');
  if (gt !== undefined && !(actual > gt)) out.push({ path, message: `must be greater than ${gt}` });
  if (gte !== undefined && !(actual >= gte)) out.push({ path, message: `must be at least ${gte}` });
  if (lt !== undefined && !(actual < lt)) out.push({ path, message: `must be less than ${lt}` });
  if (lte !== undefined && !(actual <= lte)) out.push({ path, message: `must be at most ${lte}` });
  if (Array.isArray(rules.in) && rules.in.length > 0 && !rules.in.map(toNumber).includes(actual as never)) {
    out.push({ path, message: `must be one of ${rules.in.join(', ')}` });
  }
}

const headerName = /^:?[0-9a-zA-Z!#$%&'*+\-.^_|~`]+$/;
const headerValue = /^[^\u0000-\u0008\u000A-\u001F\u007F]*$/;

function checkScalar(path: string, value: unknown, rules: Rules, out: Violation[]) {
  if (rules.string && typeof value === 'string') {
    const r = rules.string as Rules;
    const len = [...value].length;
    if (isPresent(r.min_len) && len < Number(r.min_len))
      out.push({ path, message: `must have at least ${r.min_len} characters` });
    if (isPresent(r.max_len) && len > Number(r.max_len))
      out.push({ path, message: `must have at most ${r.max_len} characters` });
    const bytes = Buffer.byteLength(value);
    if (isPresent(r.min_bytes) && bytes < Number(r.min_bytes))
      out.push({ path, message: `must have at least ${r.min_bytes} bytes` });
    if (isPresent(r.max_bytes) && bytes > Number(r.max_bytes))
      out.push({ path, message: `must have at most ${r.max_bytes} bytes` });
    if (isPresent(r.prefix) && !value.startsWith(r.prefix))
      out.push({ path, message: `must start with ${JSON.stringify(r.prefix)}` });
    if (r.well_known_regex === 'HTTP_HEADER_NAME' && r.strict !== false && !headerName.test(value)) {
      out.push({ path, message: 'must be a valid HTTP header name' });
    }
    if (r.well_known_regex === 'HTTP_HEADER_VALUE' && r.strict !== false && !headerValue.test(value)) {
      out.push({ path, message: 'must be a valid HTTP header value' });
    }
    if (Array.isArray(r.in) && r.in.length > 0 && !r.in.includes(value))
      out.push({ path, message: `must be one of ${r.in.join(', ')}` });
    return;
  }
  for (const kind of [
    'uint32',
    'uint64',
    'int32',
    'int64',
    'double',
    'float',
    'fixed32',
    'fixed64',
    'sint32',
    'sint64',
  ]) {
    if (rules[kind] && isPresent(value)) {
      compareBounds(path, Number(value), rules[kind], Number, out);
      return;
    }
  }
}

function checkMessageRules(path: string, value: unknown, rules: Rules, out: Violation[]) {
  if (rules.message?.required && !isPresent(value)) out.push({ path, message: 'is required' });
  if (rules.duration) {
    if (rules.duration.required && !isPresent(value)) out.push({ path, message: 'is required' });
    const nanos = durationNanos(value);
    if (nanos !== undefined) compareBounds(path, nanos, rules.duration, (v) => durationNanos(v) ?? 0n, out);
  }
  if (rules.any?.required && !isPresent(value)) out.push({ path, message: 'is required' });
}

/** Returns every rule the object breaks, with a dotted path to the field. Empty means valid. */
export function validateMessage(typeName: string, object: Record<string, unknown>): Violation[] {
  const out: Violation[] = [];
  walk(lookupType(typeName), object, '', out);
  const malformed = hasSurrogate(object) ? malformedString(object, '') : undefined;
  if (malformed !== undefined) out.push({ path: malformed, message: 'is not valid UTF-8 (a lone surrogate)' });
  return out;
}

function walk(type: protobuf.Type, object: Record<string, unknown>, prefix: string, out: Violation[]) {
  if (fullNameOf(type) === '.google.protobuf.Any') {
    const typeUrl = object['@type'];
    if (typeof typeUrl !== 'string') return;
    const inner = lookupType(typeUrl.slice(typeUrl.lastIndexOf('/') + 1));
    const { ['@type']: _ignored, ...rest } = object;
    walk(inner, rest, prefix, out);
    return;
  }
  for (const oneof of type.oneofsArray) {
    if (oneofRequired(oneof) && !oneof.oneof.some((name) => isPresent(object[name]))) {
      out.push({ path: join(prefix, oneof.name), message: `one of ${oneof.oneof.join(', ')} is required` });
    }
  }
  for (const field of type.fieldsArray) {
    const value = object[field.name];
    const rules = fieldRules(field);
    // Unset and unconstrained (most fields of a Cluster or Listener): nothing to check.
    if (!rules && (value === undefined || value === null)) continue;
    const path = join(prefix, field.name);
    if (field.repeated) {
      const items = Array.isArray(value) ? value : [];
      if (rules?.repeated) {
        const r = rules.repeated as Rules;
        if (isPresent(r.min_items) && items.length < Number(r.min_items))
          out.push({ path, message: `must have at least ${r.min_items} items` });
        if (isPresent(r.max_items) && items.length > Number(r.max_items))
          out.push({ path, message: `must have at most ${r.max_items} items` });
      }
      items.forEach((item, i) => checkValue(field, `${path}[${i}]`, item, rules?.repeated?.items, out));
      continue;
    }
    if (field instanceof protobuf.MapField) {
      const entries = value && typeof value === 'object' ? Object.entries(value) : [];
      if (rules?.map?.min_pairs && entries.length < Number(rules.map.min_pairs))
        out.push({ path, message: `must have at least ${rules.map.min_pairs} entries` });
      for (const [key, item] of entries)
        checkValue(field, `${path}[${JSON.stringify(key)}]`, item, rules?.map?.values, out);
      continue;
    }
    // A oneof member's rules apply only when that member is the one set.
    if (field.partOf && !isPresent(value)) continue;
    checkValue(field, path, value, rules, out);
  }
}

/**
 * Envoy keeps durations as signed 64-bit nanoseconds and refuses 9223372036s or more in any Duration
 * field ("Duration out-of-range"), well inside google.protobuf.Duration's own range.
 */
const maxDurationSeconds = 9_223_372_035;
/** A lone UTF-16 surrogate: protobuf strings are UTF-8, and one would be encoded as bytes Envoy refuses. */
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const surrogate = /[\uD800-\uDFFF]/;

/** Whether any string or key holds a surrogate at all (rare): only then are paths worked out. */
function hasSurrogate(value: unknown): boolean {
  if (typeof value === 'string') return surrogate.test(value);
  if (!value || typeof value !== 'object') return false;
  if (Array.isArray(value)) return value.some(hasSurrogate);
  for (const key of Object.keys(value)) {
    if (surrogate.test(key) || hasSurrogate((value as Record<string, unknown>)[key])) return true;
  }
  return false;
}

/** Every string, map key and Struct value included: the path of the first that is not valid UTF-8. */
function malformedString(value: unknown, path: string): string | undefined {
  if (typeof value === 'string') return loneSurrogate.test(value) ? path : undefined;
  if (!value || typeof value !== 'object') return undefined;
  for (const [key, item] of Object.entries(value)) {
    const here = Array.isArray(value) ? `${path}[${key}]` : join(path, key);
    if (loneSurrogate.test(key)) return here;
    const found = malformedString(item, here);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** Envoy's check of every Duration field, whatever its `validate.rules` say. */
function checkDurationRange(field: protobuf.Field, path: string, value: unknown, out: Violation[]) {
  const type = field.resolvedType;
  if (!(type instanceof protobuf.Type) || fullNameOf(type) !== '.google.protobuf.Duration') return;
  if (!value || typeof value !== 'object') return;
  const { seconds = 0, nanos = 0 } = value as { seconds?: number | string; nanos?: number };
  const s = Number(seconds);
  if (s < 0 || nanos < 0) out.push({ path, message: 'must not be negative' });
  else if (!(s <= maxDurationSeconds) || !(nanos <= 999_999_999)) {
    out.push({ path, message: `is out of range (under ${maxDurationSeconds + 1}s)` });
  }
}

function checkValue(field: protobuf.Field, path: string, value: unknown, rules: Rules | undefined, out: Violation[]) {
  checkDurationRange(field, path, value, out);
  if (rules) {
    checkMessageRules(path, value, rules, out);
    // Rules on wrapper fields (UInt32Value and friends) constrain the wrapped value; an unset proto3
    // scalar has its default value ("" or 0), which the rules apply to as well.
    const isMessage = field.resolvedType instanceof protobuf.Type;
    const scalar = isMessage
      ? isWrapper(field.resolvedType as protobuf.Type) && value && typeof value === 'object'
        ? (value as { value?: unknown }).value
        : undefined
      : (value ?? (field.resolvedType ? undefined : field.typeDefault));
    checkScalar(path, scalar, rules, out);
    if (rules.enum?.defined_only && isPresent(value) && field.resolvedType instanceof protobuf.Enum) {
      const values = field.resolvedType.values;
      const known = typeof value === 'number' ? Object.values(values).includes(value) : String(value) in values;
      if (!known) out.push({ path, message: `${String(value)} is not a defined ${field.resolvedType.name}` });
    }
  }
  if (
    field.resolvedType instanceof protobuf.Type &&
    value &&
    typeof value === 'object' &&
    !isWrapperOrDuration(field.resolvedType)
  ) {
    walk(field.resolvedType, value as Record<string, unknown>, path, out);
  }
}

function isWrapper(type: protobuf.Type): boolean {
  return fullNameOf(type).startsWith('.google.protobuf.') && type.name.endsWith('Value') && type.name !== 'Value';
}

function isWrapperOrDuration(type: protobuf.Type): boolean {
  return fullNameOf(type) === '.google.protobuf.Duration' || fullNameOf(type) === '.google.protobuf.Struct';
}

function join(prefix: string, name: string): string {
  return prefix ? `${prefix}.${name}` : name;
}
