// SPIFFE IDs (spiffe://TRUST-DOMAIN/ns/NS/sa/SA): what certificates' URI SANs carry and what a node
// claims to be; read by the model (allowed identities, Secrets) and the server (node identity).

const segment = /^[A-Za-z0-9._-]+$/;
const trustDomainPattern = /^[a-z0-9._-]+$/;

/** Why `text` is not a SPIFFE ID (`spiffe://td/path`, `*` allowed as a whole path segment when `wildcard`). */
export function checkSpiffeId(text: string, options: { wildcard?: boolean } = {}): string | undefined {
  const m = /^spiffe:\/\/([^/]+)((\/[^/]+)+)$/.exec(text);
  if (!m) return `${JSON.stringify(text)} is not a SPIFFE ID like spiffe://cluster.local/ns/shop/sa/web`;
  if (!trustDomainPattern.test(m[1]!)) return `${JSON.stringify(text)}: the trust domain may hold only a-z 0-9 . _ -`;
  for (const part of m[2]!.slice(1).split('/')) {
    if (part === '*' && options.wildcard) continue;
    if (part.includes('*')) return `${JSON.stringify(text)}: * is allowed only as a whole path segment (…/sa/*)`;
    if (!segment.test(part) || part === '.' || part === '..')
      return `${JSON.stringify(text)}: path segment ${JSON.stringify(part)} may hold only A-Z a-z 0-9 . _ -`;
  }
  return undefined;
}

export function spiffeIdOf(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}
