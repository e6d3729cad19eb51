// One row per `tunnel-shim.io/*` annotation: how its value is parsed (written in Envoy's own form) and
// where it lands in TunnelSettings, in the model's units (durations in milliseconds). Adding a setting is
// adding a row; annotations.ts runs the table.
import YAML from 'yaml';
import { checkFormat, checkHeaderName, hasFormatCommand } from './format.js';
import { checkAuthority, checkAuthorityFormat, checkHeaderValue, checkPath, checkUnicode } from './values.js';
import { parseDurationMs } from './durations.js';
import type { FallbackPolicy, HeaderToAdd, LbPolicy, Placement, TunnelMode, TunnelSettings } from './tunnel.js';

type Parsed<T> = { value: T } | { error: string };

export interface AnnotationRow<T = unknown> {
  key: keyof TunnelSettings;
  parse(text: string): Parsed<T>;
}

const ok = <T>(value: T): Parsed<T> => ({ value });
const fail = (error: string): Parsed<never> => ({ error });

export function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text.trim())) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

function oneOf<T extends string>(what: string, values: readonly T[]) {
  return (text: string): Parsed<T> =>
    values.includes(text.trim() as T)
      ? ok(text.trim() as T)
      : fail(`unknown ${what} ${JSON.stringify(text)}; use one of ${values.join(', ')}`);
}

function port(text: string): Parsed<number> {
  const p = parsePort(text);
  return p === undefined ? fail(`${JSON.stringify(text)} is not a port (1-65535)`) : ok(p);
}

/** A duration of at least `minMs` and at most what Envoy holds, in milliseconds. */
function durationOf(minMs: number) {
  return (text: string): Parsed<number> => {
    const parsed = parseDurationMs(text);
    if ('error' in parsed) return fail(parsed.error);
    if (parsed.ms < minMs) return fail(`${JSON.stringify(text)} is below the minimum of ${minMs}ms`);
    return ok(parsed.ms);
  };
}

function integer(min: number, max: number) {
  return (text: string): Parsed<number> => {
    const n = Number(text.trim());
    return /^\d+$/.test(text.trim()) && n >= min && n <= max
      ? ok(n)
      : fail(`${JSON.stringify(text)} is not a whole number from ${min} to ${max}`);
  };
}

function bool(text: string): Parsed<boolean> {
  if (text.trim() === 'true') return ok(true);
  if (text.trim() === 'false') return ok(false);
  return fail(`${JSON.stringify(text)} is not true or false`);
}

function formatString(text: string): Parsed<string> {
  if (text.trim() === '') return fail('is empty');
  const problem = checkFormat(text.trim());
  return problem ? fail(problem) : ok(text.trim());
}

/** The CONNECT `:authority`: `host:port`, or a format string whose literal parts fit in one. */
function authority(text: string): Parsed<string> {
  const parsed = formatString(text);
  if ('error' in parsed) return parsed;
  const problem = hasFormatCommand(parsed.value) ? checkAuthorityFormat(parsed.value) : checkAuthority(parsed.value);
  return problem ? fail(problem) : parsed;
}

/** A YAML/JSON flow map of strings, e.g. `{env: hema}`: Envoy's form for metadata and headers. */
function stringMap(text: string): Parsed<Record<string, string>> {
  let value: unknown;
  try {
    value = YAML.parse(text, { logLevel: 'error' });
  } catch (err) {
    return fail(
      `is not a map like {key: value} (${(err as Error).message.split('\n')[0]}); quote values that start with %`,
    );
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || Object.keys(value).length === 0)
    return fail('is not a non-empty map like {key: value}');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean')
      return fail(`${JSON.stringify(k)} must have a string value`);
    // YAML escapes such as "\ud800" make lone surrogates out of plain ASCII.
    const unicode = checkUnicode(k) ?? checkUnicode(String(v));
    if (unicode) return fail(`${checkUnicode(k) ? 'a key' : `the value of ${JSON.stringify(k)}`} ${unicode}`);
    out[k] = String(v);
  }
  return ok(out);
}

function labelMap(text: string): Parsed<Record<string, string>> {
  const parsed = stringMap(text);
  if ('error' in parsed) return parsed;
  for (const k of Object.keys(parsed.value)) {
    if (!/^([a-z0-9.-]+\/)?[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/.test(k))
      return fail(`${JSON.stringify(k)} is not a Pod label key`);
  }
  return parsed;
}

function headers(text: string): Parsed<HeaderToAdd[]> {
  const parsed = stringMap(text);
  if ('error' in parsed) return parsed;
  const out: HeaderToAdd[] = [];
  for (const [name, value] of Object.entries(parsed.value)) {
    const valueProblem = checkFormat(value) ?? checkHeaderValue(value);
    const bad = checkHeaderName(name) ?? (valueProblem && `${name}: ${valueProblem}`);
    if (bad) return fail(bad);
    out.push({ name, value });
  }
  return ok(out);
}

/** A virtual host domain: exact `host:port`, or one leading `*` for a suffix (`*:1234`, `*.example.com:443`). */
function domains(text: string): Parsed<string[]> {
  const list = text
    .split(',')
    .map((d) => d.trim())
    .filter(Boolean);
  if (list.length === 0) return fail('lists no authority');
  for (const d of list) {
    if (d === '*') return fail('"*" would make the terminator an open proxy; list the authorities it may accept');
    const problem = checkAuthority(d, { wildcard: true });
    if (problem) return fail(`${problem}; or a suffix like *:1234`);
  }
  if (new Set(list).size !== list.length) return fail('lists an authority twice');
  return ok(list);
}

function postPath(text: string): Parsed<string> {
  const problem = checkPath(text.trim());
  return problem ? fail(problem) : ok(text.trim());
}

/** Absolute paths only: a relative path would land wherever the Envoy process happens to run. */
function logPath(text: string): Parsed<string> {
  const p = text.trim();
  if (!p.startsWith('/') || p.split('/').includes('..') || /[\s\0]/.test(p))
    return fail(`${JSON.stringify(text)} is not an absolute file path like /dev/stdout`);
  // Envoy refuses the whole listener when it cannot open the file ("Is a directory").
  if (['', '.'].includes(p.split('/').at(-1)!)) {
    return fail(`${JSON.stringify(text)} names a directory; name a file like /var/log/tunnel.log`);
  }
  return ok(p);
}

export const tunnelModes: readonly TunnelMode[] = ['h2', 'h1', 'h2-post'];
export const placements: readonly Placement[] = ['sidecar', 'gateway'];
export const lbPolicies: readonly LbPolicy[] = ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV'];
export const fallbackPolicies: readonly FallbackPolicy[] = ['NO_FALLBACK', 'ANY_ENDPOINT', 'DEFAULT_SUBSET'];

/** Envoy's Http2ProtocolOptions bounds, for stream and connection windows alike. */
const windowSize = integer(65535, 2 ** 31 - 1);
const bufferBytes = integer(1024, 2 ** 31 - 1);

/** Every annotation but `tunnel-shim.io/tunnel` itself, which turns tunneling on. */
export const annotationTable: Record<string, AnnotationRow> = {
  'tunnel-shim.io/tunnel-port': { key: 'tunnelPort', parse: port },
  'tunnel-shim.io/placement': { key: 'placement', parse: oneOf('placement', placements) },
  'tunnel-shim.io/post-path': { key: 'postPath', parse: postPath },
  'tunnel-shim.io/hostname': { key: 'hostname', parse: authority },
  'tunnel-shim.io/domains': { key: 'domains', parse: domains },
  'tunnel-shim.io/headers-to-add': { key: 'headersToAdd', parse: headers },
  'tunnel-shim.io/propagate-response-headers': { key: 'propagateResponseHeaders', parse: bool },
  'tunnel-shim.io/propagate-response-trailers': { key: 'propagateResponseTrailers', parse: bool },
  'tunnel-shim.io/idle-timeout': { key: 'idleTimeoutMs', parse: durationOf(0) },
  'tunnel-shim.io/max-downstream-connection-duration': {
    key: 'maxDownstreamConnectionDurationMs',
    parse: durationOf(1),
  },
  'tunnel-shim.io/max-connect-attempts': { key: 'maxConnectAttempts', parse: integer(1, 100) },
  'tunnel-shim.io/access-log': { key: 'accessLog', parse: logPath },
  'tunnel-shim.io/access-log-format': { key: 'accessLogFormat', parse: formatString },
  'tunnel-shim.io/hash-policy': { key: 'hashPolicy', parse: oneOf('hash policy', ['source-ip'] as const) },
  'tunnel-shim.io/lb-policy': { key: 'lbPolicy', parse: oneOf('lb policy', lbPolicies) },
  'tunnel-shim.io/metadata-match': { key: 'metadataMatch', parse: labelMap },
  'tunnel-shim.io/default-subset': { key: 'defaultSubset', parse: labelMap },
  'tunnel-shim.io/fallback-policy': { key: 'fallbackPolicy', parse: oneOf('fallback policy', fallbackPolicies) },
  'tunnel-shim.io/max-concurrent-streams': { key: 'maxConcurrentStreams', parse: integer(1, 2147483647) },
  // Envoy's KeepaliveSettings: both at least 1ms.
  'tunnel-shim.io/connection-keepalive-interval': { key: 'connectionKeepaliveIntervalMs', parse: durationOf(1) },
  'tunnel-shim.io/connection-keepalive-timeout': { key: 'connectionKeepaliveTimeoutMs', parse: durationOf(1) },
  'tunnel-shim.io/relay-port': { key: 'relayPort', parse: port },
  'tunnel-shim.io/initial-stream-window-size': { key: 'initialStreamWindowSize', parse: windowSize },
  'tunnel-shim.io/initial-connection-window-size': { key: 'initialConnectionWindowSize', parse: windowSize },
  'tunnel-shim.io/per-connection-buffer-limit-bytes': { key: 'perConnectionBufferLimitBytes', parse: bufferBytes },
};
