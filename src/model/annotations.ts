// The `tunnel-shim.io/*` annotations a Service carries, each parsed into a setting or a clear error.
// Per-annotation parsing is the table in annotation-table.ts; the checks across settings live here.
import path from 'node:path';
import { flowControl } from './defaults.js';
import { annotationTable, tunnelModes } from './annotation-table.js';
import { hasFormatCommand } from './format.js';
import { checkUnicode } from './values.js';
import type { TunnelMode, TunnelSettings } from './tunnel.js';

export { parsePort } from './annotation-table.js';

export const annotationPrefix = 'tunnel-shim.io/';
export const Annotation = {
  tunnel: 'tunnel-shim.io/tunnel',
  tunnelPort: 'tunnel-shim.io/tunnel-port',
  placement: 'tunnel-shim.io/placement',
} as const;

export const defaultTunnelPort = 15008;

export interface AnnotationError {
  annotation: string;
  message: string;
}

const a = (key: string) => `${annotationPrefix}${key}`;

/** Annotations that also mean something on a Service that is only a TCPRoute backend. */
export const backendAnnotations = [a('metadata-match'), a('default-subset'), a('fallback-policy')];

/** Parses the tunnel settings of a Service; `undefined` settings means the Service is not tunneled. */
export function parseTunnelSettings(annotations: Record<string, string>): {
  settings?: TunnelSettings;
  errors: AnnotationError[];
} {
  const errors: AnnotationError[] = [];
  const modeText = annotations[Annotation.tunnel];
  if (modeText === undefined) {
    // A TCPRoute backend needs no tunnel of its own, but may narrow its share to some Pods.
    const stray = Object.keys(annotations).filter(
      (k) => k.startsWith(annotationPrefix) && !backendAnnotations.includes(k),
    );
    for (const annotation of stray) {
      errors.push({ annotation, message: `has no effect without ${Annotation.tunnel}` });
    }
    return { errors };
  }
  // A file may leave a value empty (`key:` is null in YAML) or write a number: read what a user sees.
  const modeWritten = String(modeText ?? '').trim();
  const mode = modeWritten === '' ? 'h2' : (modeWritten as TunnelMode);
  if (!tunnelModes.includes(mode)) {
    errors.push({
      annotation: Annotation.tunnel,
      message: `unknown tunnel mode ${JSON.stringify(modeText)}; use one of ${tunnelModes.join(', ')}`,
    });
  }
  const settings: TunnelSettings = { mode, tunnelPort: defaultTunnelPort, placement: 'sidecar' };
  const given = new Set<string>();
  for (const [key, text] of Object.entries(annotations)) {
    if (!key.startsWith(annotationPrefix) || key === Annotation.tunnel) continue;
    const row = annotationTable[key];
    if (!row) {
      errors.push({ annotation: key, message: 'is not a tunnel-shim annotation' });
      continue;
    }
    // Every value, whatever its kind: a lone surrogate cannot be encoded into a protobuf string.
    const value = String(text ?? '');
    const unicode = checkUnicode(value);
    const parsed = unicode ? { error: unicode } : row.parse(value);
    if ('error' in parsed) errors.push({ annotation: key, message: parsed.error });
    else {
      (settings as unknown as Record<string, unknown>)[row.key] = parsed.value;
      given.add(key);
    }
  }
  errors.push(...crossChecks(settings, given));
  return { settings, errors };
}

/** Combinations Envoy would reject, or that would silently do nothing. */
function crossChecks(s: TunnelSettings, given: Set<string>): AnnotationError[] {
  const errors: AnnotationError[] = [];
  const err = (key: string, message: string) => errors.push({ annotation: a(key), message });
  if (s.postPath !== undefined && s.mode !== 'h2-post')
    err('post-path', `needs ${Annotation.tunnel}: h2-post (Envoy rejects post_path without use_post)`);
  if (s.mode === 'h2-post') s.postPath ??= '/';
  if (s.hostname !== undefined && hasFormatCommand(s.hostname) && !s.domains) {
    err(
      'hostname',
      `${JSON.stringify(s.hostname)} is decided per connection; ` +
        `list the authorities terminators may accept in ${a('domains')}`,
    );
  }
  if (s.maxConcurrentStreams !== undefined && s.mode === 'h1')
    err('max-concurrent-streams', 'HTTP/1.1 tunnels carry one stream per connection; use h2 or h2-post');
  for (const key of ['connection-keepalive-interval', 'connection-keepalive-timeout']) {
    if (given.has(a(key)) && s.mode === 'h1')
      err(key, 'HTTP/1.1 tunnels have no HTTP/2 PING keepalive; use h2 or h2-post');
  }
  if (s.accessLogFormat !== undefined && s.accessLog === undefined)
    err('access-log-format', `needs ${a('access-log')} (the file to write)`);
  if (s.hashPolicy && s.lbPolicy && s.lbPolicy !== 'RING_HASH' && s.lbPolicy !== 'MAGLEV') {
    err('lb-policy', `${s.lbPolicy} ignores ${a('hash-policy')}; use RING_HASH or MAGLEV`);
  }
  if (s.hashPolicy) s.lbPolicy ??= 'RING_HASH';
  const subsetGiven = given.has(a('default-subset')) || given.has(a('fallback-policy'));
  if (subsetGiven && !s.metadataMatch)
    err(given.has(a('default-subset')) ? 'default-subset' : 'fallback-policy', `needs ${a('metadata-match')}`);
  if (s.metadataMatch) s.fallbackPolicy ??= s.defaultSubset ? 'DEFAULT_SUBSET' : 'NO_FALLBACK';
  if (s.fallbackPolicy === 'DEFAULT_SUBSET' && s.metadataMatch && !s.defaultSubset)
    err('fallback-policy', `DEFAULT_SUBSET needs ${a('default-subset')}`);
  errors.push(...windowChecks(s, given));
  if (s.relayPort !== undefined && s.mode === 'h2-post')
    err('relay-port', 'relays forward CONNECT; an h2-post tunnel cannot be relayed');
  if (s.relayPort !== undefined && s.relayPort === s.tunnelPort)
    err('relay-port', `must differ from the tunnel port ${s.tunnelPort}`);
  return errors;
}

/** A stream window must leave most of the connection window to the other streams on the connection. */
function windowChecks(s: TunnelSettings, given: Set<string>): AnnotationError[] {
  const windows = ['initial-stream-window-size', 'initial-connection-window-size'].filter((k) => given.has(a(k)));
  const h1 = 'HTTP/1.1 tunnels have no HTTP/2 flow control; use h2 or h2-post';
  if (s.mode === 'h1') return windows.map((k) => ({ annotation: a(k), message: h1 }));
  const stream = s.initialStreamWindowSize ?? flowControl.initialStreamWindowSize;
  const connection = s.initialConnectionWindowSize ?? flowControl.initialConnectionWindowSize;
  if (windows.length === 0 || stream * 2 <= connection) return [];
  return [
    {
      annotation: a(windows[0]!),
      message:
        `the stream window (${stream}) must be at most half the connection window (${connection}), ` +
        'or a few stuck tunnels take the whole pooled connection',
    },
  ];
}

/** Envoy's own output streams write no file of the host: always allowed. */
const outputStreams = ['/dev/stdout', '/dev/stderr'];

/**
 * A directory given to `--access-log-dir`, normalised (`/var/log/tunnels/` -> `/var/log/tunnels`), or
 * an error: it must be absolute and without `..`, like the paths it admits.
 */
export function parseAccessLogDir(text: string): { dir: string } | { error: string } {
  const d = text.trim();
  if (!d.startsWith('/') || d.split('/').includes('..') || /[\s\0]/.test(d))
    return { error: 'expected an absolute directory without .. like /var/log/tunnels' };
  const normal = path.posix.normalize(d);
  return { dir: normal.length > 1 ? normal.replace(/\/+$/, '') : normal };
}

/**
 * Why a per-Service log path (already absolute, without `..`) is not admitted under `dirs`; undefined
 * when it is, or when no directories were given. The path as written is checked: the shim cannot see
 * the Envoy hosts' file systems, so it cannot follow symlinks there.
 */
export function accessLogOutsideDirs(file: string, dirs: readonly string[] | undefined): string | undefined {
  if (!dirs || dirs.length === 0 || outputStreams.includes(file)) return undefined;
  const normal = path.posix.normalize(file);
  if (dirs.some((d) => normal.startsWith(d === '/' ? d : `${d}/`))) return undefined;
  return (
    `${JSON.stringify(file)} is not under a directory this shim allows access logs in ` +
    `(--access-log-dir ${dirs.join(', ')}); /dev/stdout and /dev/stderr are always allowed`
  );
}
