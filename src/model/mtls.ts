// Mutual TLS settings of a Service (tunnel-shim.io/mtls, tunnel-shim.io/allowed-identities) and the
// SPIFFE IDs they name. The modes are Istio PeerAuthentication's: strict (mTLS only), permissive
// (plaintext and mTLS on one port), disable (plaintext, as before identities existed), and auto (the
// default: permissive terminators, originators using TLS when both ends have certificates, as Istio's
// auto mTLS does).
import type { Diagnostic } from './diagnostics.js';
import type { Endpoint, Tunnel } from './tunnel.js';
import { checkSpiffeId, spiffeIdOf } from '../envoy/spiffe.js';

export type MtlsMode = 'strict' | 'permissive' | 'disable' | 'auto';
export const mtlsModes: readonly MtlsMode[] = ['strict', 'permissive', 'disable', 'auto'];

type Parsed<T> = { value: T } | { error: string };

export function parseMtlsMode(text: string): Parsed<MtlsMode> {
  const mode = text.trim() as MtlsMode;
  return mtlsModes.includes(mode)
    ? { value: mode }
    : { error: `unknown mTLS mode ${JSON.stringify(text)}; use one of ${mtlsModes.join(', ')}` };
}

/** `tunnel-shim.io/allowed-identities`: a comma list of SPIFFE IDs, each maybe with `*` segments. */
export function parseAllowedIdentities(text: string): Parsed<string[]> {
  const ids = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (ids.length === 0) return { error: 'lists no identity; remove the annotation to allow every authenticated peer' };
  if (ids.length > 256) return { error: `lists ${ids.length} identities; at most 256` };
  for (const id of ids) {
    const problem = checkSpiffeId(id, { wildcard: true });
    if (problem) return { error: problem };
  }
  return { value: [...new Set(ids)].sort() };
}

/** A SAN or principal matcher (Envoy's StringMatcher) for a SPIFFE ID that may hold `*` segments. */
export function spiffeMatcher(id: string): Record<string, unknown> {
  if (!id.includes('*')) return { exact: id };
  const regex = id
    .split('/')
    .map((part) => (part === '*' ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return { safe_regex: { regex: `^${regex}$` } };
}

/** Unset (no annotation, `serve --mtls` not given or auto): auto. */
export function mtlsModeOf(t: Tunnel): MtlsMode {
  return t.settings.mtls ?? 'auto';
}

/**
 * Who may terminate a Service's tunnels, as the originator checks the terminator's certificate: the
 * service accounts of the endpoints' Pods when every endpoint's Pod is known (a sidecar terminator runs
 * as its Pod), else any identity of the Service's namespace.
 */
export function servingIdentities(t: Tunnel, trustDomain: string): string[] {
  const ns = t.service.namespace;
  const accounts = t.endpoints.map((e: Endpoint) => e.serviceAccount);
  if (t.settings.placement === 'sidecar' && accounts.length > 0 && accounts.every((a) => a !== undefined))
    return [...new Set(accounts.map((a) => spiffeIdOf(trustDomain, ns, a!)))].sort();
  return [spiffeIdOf(trustDomain, ns, '*')];
}

/**
 * A Service's settings with the shim's default mode (`serve --mtls`) filled in, or why they cannot
 * stand: an allowlist needs peers with identities, which a plaintext tunnel has not.
 */
export function withMtlsDefault<S extends { mtls?: MtlsMode; allowedIdentities?: string[] }>(
  settings: S,
  mtlsDefault: MtlsMode | undefined,
): { settings: S; error?: string } {
  const s = settings.mtls || !mtlsDefault || mtlsDefault === 'auto' ? settings : { ...settings, mtls: mtlsDefault };
  if (s.allowedIdentities && s.mtls === 'disable')
    return {
      settings: s,
      error: 'needs tunnel-shim.io/mtls strict, permissive or auto: a plaintext peer has no identity',
    };
  return { settings: s };
}

/**
 * Auto mode: whether every identity that may serve the Service has a certificate, so an originator
 * with one of its own may use TLS. A `*` identity is not known to have one; with an external SDS
 * server (`serve --sds`) every identity is assumed to.
 */
export function servedWithCertificates(
  servedBy: readonly string[],
  identities: ReadonlyMap<string, unknown>,
  externalSds: boolean,
): boolean {
  if (externalSds) return true;
  return servedBy.length > 0 && servedBy.every((id) => !id.includes('*') && identities.has(id));
}

/**
 * Warnings on strict Services whose terminators' identities (known from their Pods) have no
 * certificate: those tunnels fail until one appears; they never fall back to plaintext.
 */
export function missingCertificates(
  tunnels: readonly Tunnel[],
  identities: ReadonlyMap<string, unknown>,
): Diagnostic[] {
  const out: Diagnostic[] = [];
  const seen = new Set<string>();
  for (const t of tunnels) {
    if (mtlsModeOf(t) !== 'strict' || t.via || seen.has(t.key)) continue;
    seen.add(t.key);
    const missing = (t.servedBy ?? []).filter((id) => !id.includes('*') && !identities.has(id));
    if (missing.length === 0) continue;
    out.push({
      severity: 'warning',
      reason: 'CertificateMissing',
      object: t.service,
      origin: t.origin,
      path: ['metadata', 'annotations', 'tunnel-shim.io/mtls'],
      message:
        `strict, but no identity Secret holds ${missing.join(', ')} (its endpoints' service accounts): ` +
        'those terminators cannot accept tunnels until one does; nothing falls back to plaintext',
    });
  }
  return out;
}
