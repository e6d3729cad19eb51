// Identity Secrets -> the certificates the shim serves over SDS. A Secret holds one identity: type
// kubernetes.io/tls with tls.crt, tls.key and ca.crt (what cert-manager writes; ca.crt may hold several
// roots during a CA rollover), the label tunnel-shim.io/identity (what the Kubernetes source selects
// by) and the annotation tunnel-shim.io/identity naming the SPIFFE ID it holds. Whatever is wrong is an
// error naming the Secret and field; an identity whose Secret goes bad or away keeps its last good
// certificate (never a silent downgrade: nothing falls back to plaintext).
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { Collector } from './collector.js';
import type { Diagnostic } from './diagnostics.js';
import { checkSpiffeId } from '../envoy/spiffe.js';
import { refOf, type ObjectRef, type Origin, type SourcedObject } from './objects.js';
import { errorMessage } from '../errors.js';

export const identityKey = 'tunnel-shim.io/identity';
/** The development CA's own Secret (it holds the CA's key): never served. */
export const devCaLabel = 'tunnel-shim.io/dev-ca';

export interface IdentityCert {
  /** The SPIFFE ID. */
  id: string;
  secret: ObjectRef;
  origin?: Origin;
  /** PEM: the leaf first, then any intermediates. */
  certChain: string;
  privateKey: string;
  /** PEM roots the identity trusts (its peers' certificates are checked against these). */
  bundle: string;
  /** Leaf validity end, epoch ms. */
  notAfter: number;
  /** Leaf serial, hex. */
  serial: string;
}

export interface IdentityOptions {
  trustDomain: string;
  /** Epoch ms; the default is the clock (expiry checks). */
  now?: number;
  /** A certificate this close to its end is a warning. */
  expiryWarningMs?: number;
}

export const isIdentitySecret = (o: SourcedObject['object']) =>
  o.kind === 'Secret' &&
  (o.apiVersion ?? 'v1') === 'v1' &&
  o.metadata?.labels?.[identityKey] !== undefined &&
  o.metadata?.labels?.[devCaLabel] === undefined;

const pemBlocks = (text: string) => text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];

/** A data key's text: `data` is base64 (the API's form), `stringData` plain (handy in files). */
function field(object: SourcedObject['object'], key: string): string | undefined {
  const data = object.data as Record<string, unknown> | undefined;
  const raw = data?.[key];
  if (typeof raw === 'string') return Buffer.from(raw, 'base64').toString('utf8');
  const plain = (object.stringData as Record<string, unknown> | undefined)?.[key];
  return typeof plain === 'string' ? plain : undefined;
}

/** One Secret's certificate, or undefined with errors in `report`. */
function parseSecret(sourced: SourcedObject, options: IdentityOptions, report: Collector): IdentityCert | undefined {
  const o = sourced.object;
  const ref = refOf(o);
  const id = o.metadata?.annotations?.[identityKey];
  const annotationPath = ['metadata', 'annotations', identityKey];
  if (o.type !== 'kubernetes.io/tls')
    return void report.error('InvalidSecret', ['type'], `must be kubernetes.io/tls (got ${JSON.stringify(o.type)})`);
  if (typeof id !== 'string') {
    const example = `spiffe://${options.trustDomain}/ns/${ref.namespace}/sa/NAME`;
    return void report.error(
      'InvalidSecret',
      annotationPath,
      `is required: the SPIFFE ID this Secret holds (${example})`,
    );
  }
  const problem = checkSpiffeId(id);
  if (problem) return void report.error('InvalidSecret', annotationPath, problem);
  const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(id);
  if (!m) return void report.error('InvalidSecret', annotationPath, `${id} is not of the form spiffe://TD/ns/NS/sa/SA`);
  if (m[1] !== options.trustDomain)
    return void report.error('InvalidSecret', annotationPath, `${id} is not in trust domain ${options.trustDomain}`);
  if (m[2] !== ref.namespace)
    return void report.error(
      'InvalidSecret',
      annotationPath,
      `${id} belongs to namespace ${m[2]}; an identity's Secret must be in its own namespace (${ref.namespace})`,
    );
  const texts: Record<string, string> = {};
  for (const key of ['tls.crt', 'tls.key', 'ca.crt']) {
    const text = field(o, key);
    if (!text?.trim()) return void report.error('InvalidSecret', ['data', key], 'is missing or empty');
    texts[key] = text;
  }
  const chain = pemBlocks(texts['tls.crt']!);
  const roots = pemBlocks(texts['ca.crt']!);
  let leaf: X509Certificate;
  try {
    if (chain.length === 0) throw new Error('holds no PEM certificate');
    leaf = new X509Certificate(chain[0]!);
  } catch (err) {
    return void report.error('InvalidSecret', ['data', 'tls.crt'], `is not a certificate: ${errorMessage(err)}`);
  }
  try {
    if (roots.length === 0) throw new Error('holds no PEM certificate');
    roots.forEach((r) => new X509Certificate(r));
  } catch (err) {
    return void report.error('InvalidSecret', ['data', 'ca.crt'], `is not a certificate bundle: ${errorMessage(err)}`);
  }
  try {
    if (!leaf.checkPrivateKey(createPrivateKey(texts['tls.key']!))) throw new Error("is not tls.crt's key");
  } catch (err) {
    return void report.error('InvalidSecret', ['data', 'tls.key'], `${errorMessage(err)}`);
  }
  const sans = (leaf.subjectAltName ?? '').split(', ').filter((s) => s.startsWith('URI:'));
  if (sans.length !== 1 || sans[0] !== `URI:${id}`)
    return void report.error(
      'InvalidSecret',
      ['data', 'tls.crt'],
      `the certificate's URI SAN (${sans.map((s) => s.slice(4)).join(', ') || 'none'}) must be ${id}, ` +
        'as the annotation says',
    );
  const now = options.now ?? Date.now();
  const notAfter = Date.parse(leaf.validTo);
  if (notAfter <= now)
    return void report.error(
      'CertificateExpired',
      ['data', 'tls.crt'],
      `expired at ${new Date(notAfter).toISOString()}`,
    );
  if (Date.parse(leaf.validFrom) > now)
    report.warn('CertificateNotYetValid', ['data', 'tls.crt'], `is valid only from ${leaf.validFrom}`);
  if (notAfter - now < (options.expiryWarningMs ?? 24 * 3_600_000))
    report.warn('CertificateExpiring', ['data', 'tls.crt'], `expires at ${new Date(notAfter).toISOString()}`);
  return {
    id,
    secret: ref,
    origin: sourced.origin,
    certChain: chain.join('\n') + '\n',
    privateKey: texts['tls.key']!,
    bundle: roots.join('\n') + '\n',
    notAfter,
    serial: leaf.serialNumber.toLowerCase(),
  };
}

function sameCert(a: IdentityCert, b: IdentityCert): boolean {
  return (
    a.certChain === b.certChain &&
    a.privateKey === b.privateKey &&
    a.bundle === b.bundle &&
    a.secret.namespace === b.secret.namespace &&
    a.secret.name === b.secret.name
  );
}

/**
 * The certificates by SPIFFE ID. `previous` (the last model's) keeps the last good certificate of an
 * identity whose Secret became invalid or was deleted, with a warning naming the Secret.
 */
export function buildIdentities(
  secrets: readonly SourcedObject[],
  options: IdentityOptions,
  previous: ReadonlyMap<string, IdentityCert> | undefined,
  diagnostics: Diagnostic[],
): Map<string, IdentityCert> {
  const out = new Map<string, IdentityCert>();
  const failed = new Map<string, SourcedObject>();
  const sorted = [...secrets].sort((a, b) => {
    const x = refOf(a.object);
    const y = refOf(b.object);
    return `${x.namespace}/${x.name}` < `${y.namespace}/${y.name}` ? -1 : 1;
  });
  for (const sourced of sorted) {
    // Parsed on every build: expiry is checked against the clock of this build.
    const report = new Collector(sourced);
    const known = { cert: parseSecret(sourced, options, report) };
    diagnostics.push(...report.diagnostics);
    const claimed = sourced.object.metadata?.annotations?.[identityKey];
    if (!known.cert) {
      if (typeof claimed === 'string') failed.set(claimed, sourced);
      continue;
    }
    const owner = out.get(known.cert.id);
    if (owner) {
      const report = new Collector(sourced);
      const by = `${owner.secret.namespace}/${owner.secret.name}`;
      report.error('DuplicateIdentity', ['metadata', 'annotations', identityKey], `${known.cert.id} is held by ${by}`);
      diagnostics.push(...report.diagnostics);
      continue;
    }
    // The same content keeps its object, so nothing downstream sees a change (xds/cache.ts compares objects).
    const last = previous?.get(known.cert.id);
    out.set(known.cert.id, last && sameCert(last, known.cert) ? last : known.cert);
  }
  for (const [id, last] of previous ?? []) {
    if (out.has(id)) continue;
    const broken = failed.get(id);
    const secret = broken ? refOf(broken.object) : last.secret;
    out.set(id, last);
    diagnostics.push({
      severity: 'warning',
      reason: 'KeptLastGoodCertificate',
      object: secret,
      origin: broken?.origin ?? last.origin,
      path: broken ? ['data', 'tls.crt'] : [],
      message:
        `${broken ? 'is invalid' : `was deleted (or lost its ${identityKey} label)`}: ` +
        `${id} keeps serving its last good certificate (serial ${last.serial}); nothing falls back to plaintext`,
    });
  }
  return out;
}
