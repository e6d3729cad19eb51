// SDS: the Secrets a node is served over ADS. Only its own identity's certificate and key (a node
// without an identity, or with an external SDS server, gets none), under names that are the same for
// every node (translate/tls.ts), and the roots its identity trusts.
import type { Model } from '../model/tunnel.js';
import type { NamedResource } from './resources.js';
import { shimSecretNames } from './tls.js';
import type { NodeView } from './view.js';

/** Whether a view's Secrets differ between two models (certificates keep their object while unchanged). */
export function secretsChanged(before: Model | undefined, after: Model, view: NodeView): boolean {
  if (view.identity === undefined || view.sds !== undefined) return false;
  return before?.tls?.identities.get(view.identity) !== after.tls?.identities.get(view.identity);
}

export function translateSecrets(model: Model, view: NodeView): NamedResource[] {
  if (view.identity === undefined || view.sds !== undefined) return [];
  const cert = model.tls?.identities.get(view.identity);
  if (!cert) return [];
  return [
    {
      name: shimSecretNames.cert,
      object: {
        name: shimSecretNames.cert,
        tls_certificate: {
          certificate_chain: { inline_string: cert.certChain },
          private_key: { inline_string: cert.privateKey },
        },
      },
    },
    {
      name: shimSecretNames.bundle,
      object: { name: shimSecretNames.bundle, validation_context: { trusted_ca: { inline_string: cert.bundle } } },
    },
  ];
}

/** A Secret as views that show resources print it: the private key never leaves the shim that way. */
export function redactSecret(secret: Record<string, unknown>): Record<string, unknown> {
  const tls = secret.tls_certificate as Record<string, unknown> | undefined;
  if (!tls) return secret;
  return { ...secret, tls_certificate: { ...tls, private_key: { inline_string: '[redacted]' } } };
}
