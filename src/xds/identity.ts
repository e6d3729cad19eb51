// Which identity a node is. One place, so that the authoritative source (the client certificate of an
// mTLS xDS stream) can be added beside the claim in the node's bootstrap metadata.
import { checkSpiffeId, spiffeIdOf } from '../envoy/spiffe.js';

export interface IdentityOptions {
  trustDomain: string;
  /** `serve --insecure-identities`: believe the identity a node claims in its metadata (laptops only). */
  insecureIdentities?: boolean;
}

export class IdentityError extends Error {}

/**
 * The SPIFFE ID of a node from what its metadata claims (`ns/sa` or `spiffe://...`), or undefined: a
 * claim counts only with `insecureIdentities`, and a node without an identity is served no key.
 */
export function resolveIdentity(metadataClaim: unknown, options: IdentityOptions | undefined): string | undefined {
  if (metadataClaim === undefined || metadataClaim === '') return undefined;
  if (typeof metadataClaim !== 'string') throw new IdentityError(`must be NAMESPACE/SERVICEACCOUNT or a SPIFFE ID`);
  const claim = metadataClaim.trim();
  const short = /^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)\/([a-z0-9]([-.a-z0-9]{0,251}[a-z0-9])?)$/.exec(claim);
  const trustDomain = options?.trustDomain ?? 'cluster.local';
  const id = short ? spiffeIdOf(trustDomain, short[1]!, short[3]!) : claim;
  const problem = checkSpiffeId(id);
  if (problem) throw new IdentityError(`must be NAMESPACE/SERVICEACCOUNT or a SPIFFE ID: ${problem}`);
  if (!id.startsWith(`spiffe://${trustDomain}/`))
    throw new IdentityError(`${id} is not in trust domain ${trustDomain}`);
  return options?.insecureIdentities ? id : undefined;
}
