// A development CA for laptops and tests: a root and SPIFFE identity certificates, as the Secrets the shim
// reads (type kubernetes.io/tls with tls.crt, tls.key and ca.crt, the keys cert-manager writes).
// @peculiar/x509 resolves its ASN.1 schemas through tsyringe, which needs the Reflect metadata polyfill first.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as Crypto);

const ecdsa = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const hourMs = 3_600_000;

/** The annotation naming the identity a Secret holds, and the label the Kubernetes source selects Secrets by. */
export const identityAnnotation = 'tunnel-shim.io/identity';
export const identityLabel = 'tunnel-shim.io/identity';
/** The label of the CA's own Secret: never served (it holds the CA's key), only read back by `certs --ca`. */
export const caLabel = 'tunnel-shim.io/dev-ca';

export interface IssuedCert {
  cert: x509.X509Certificate;
  certPem: string;
  keyPem: string;
  keys: CryptoKeyPair;
}

export interface Identity {
  namespace: string;
  serviceAccount: string;
}

export function spiffeId(trustDomain: string, id: Identity): string {
  return `spiffe://${trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

/** `ns/sa` as given to `--identity`. */
export function parseIdentity(text: string): Identity {
  const m = /^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)\/([a-z0-9]([-.a-z0-9]{0,251}[a-z0-9])?)$/.exec(text);
  if (!m) throw new Error(`identity ${JSON.stringify(text)}: expected NAMESPACE/SERVICEACCOUNT`);
  return { namespace: m[1]!, serviceAccount: m[3]! };
}

async function keyPem(keys: CryptoKeyPair): Promise<string> {
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
}

function randomSerial(): string {
  // 16 random bytes with the top bit clear: a positive serial, as RFC 5280 asks.
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0]! &= 0x7f;
  return Buffer.from(bytes).toString('hex');
}

export async function createCa(trustDomain: string, opts: { validHours?: number; name?: string } = {}) {
  const keys = await webcrypto.subtle.generateKey(ecdsa, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `O=tunnel-shim development CA, CN=${opts.name ?? trustDomain}`,
    notBefore: new Date(Date.now() - hourMs),
    notAfter: new Date(Date.now() + (opts.validHours ?? 24 * 365) * hourMs),
    signingAlgorithm: ecdsa,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${trustDomain}` }]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, certPem: cert.toString('pem'), keyPem: await keyPem(keys), keys } satisfies IssuedCert;
}

/** A leaf for one SPIFFE ID, usable as client and server certificate (a tunnel hop is both). */
export async function issueIdentity(
  ca: IssuedCert,
  trustDomain: string,
  id: Identity,
  opts: { validHours?: number; notBefore?: Date } = {},
): Promise<IssuedCert> {
  const keys = await webcrypto.subtle.generateKey(ecdsa, true, ['sign', 'verify']);
  const notBefore = opts.notBefore ?? new Date(Date.now() - hourMs);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `O=tunnel-shim, OU=${id.namespace}, CN=${id.serviceAccount}`,
    issuer: ca.cert.subject,
    notBefore,
    notAfter: new Date(notBefore.getTime() + hourMs + (opts.validHours ?? 24 * 90) * hourMs),
    signingAlgorithm: ecdsa,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId(trustDomain, id) }], true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  });
  return { cert, certPem: cert.toString('pem'), keyPem: await keyPem(keys), keys };
}

/** Reads a CA back from its PEM certificate and PKCS#8 key (the CA Secret `certs` printed before). */
export async function loadCa(certPem: string, keyPem: string): Promise<IssuedCert> {
  const cert = new x509.X509Certificate(certPem);
  const privateKey = await webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decode(keyPem)[0]!, ecdsa, true, [
    'sign',
  ]);
  const publicKey = await cert.publicKey.export(ecdsa, ['verify'], webcrypto as Crypto);
  return { cert, certPem, keyPem, keys: { privateKey, publicKey } };
}

const base64 = (text: string) => Buffer.from(text).toString('base64');

export interface KubeSecret {
  apiVersion: 'v1';
  kind: 'Secret';
  type: 'kubernetes.io/tls';
  metadata: { name: string; namespace: string; labels: Record<string, string>; annotations?: Record<string, string> };
  data: Record<'tls.crt' | 'tls.key' | 'ca.crt', string>;
}

/** The Secret of one identity: its certificate and key, and the roots it trusts (`bundle`, one or more PEMs). */
export function identitySecret(trustDomain: string, id: Identity, leaf: IssuedCert, bundle: string): KubeSecret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: {
      name: `${id.serviceAccount}-identity`,
      namespace: id.namespace,
      labels: { [identityLabel]: id.serviceAccount },
      annotations: { [identityAnnotation]: spiffeId(trustDomain, id) },
    },
    data: { 'tls.crt': base64(leaf.certPem), 'tls.key': base64(leaf.keyPem), 'ca.crt': base64(bundle) },
  };
}

export function caSecret(ca: IssuedCert, namespace = 'tunnel-shim'): KubeSecret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: { name: 'tunnel-shim-dev-ca', namespace, labels: { [caLabel]: 'true' } },
    data: { 'tls.crt': base64(ca.certPem), 'tls.key': base64(ca.keyPem), 'ca.crt': base64(ca.certPem) },
  };
}
