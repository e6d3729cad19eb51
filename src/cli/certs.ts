// `tunnel-shim certs`: a development CA and one identity Secret per --identity, as YAML for the file source.
import fs from 'node:fs';
import YAML from 'yaml';
import {
  caLabel,
  caSecret,
  createCa,
  identitySecret,
  issueIdentity,
  loadCa,
  parseIdentity,
  type IssuedCert,
  type KubeSecret,
} from './dev-ca.js';

export interface CertsOptions {
  trustDomain: string;
  identities: string[];
  /** A file `certs` wrote before: issue from its CA instead of a new one (rotation). */
  ca?: string;
  /** Files whose CA certificates are trusted too (a CA rollover: old and new roots in every bundle). */
  trust?: string[];
  validHours?: number;
}

const decode = (data: string | undefined) => Buffer.from(data ?? '', 'base64').toString('utf8');

function secretsIn(file: string): KubeSecret[] {
  return YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'))
    .map((d) => d.toJS() as KubeSecret | null)
    .filter((o): o is KubeSecret => o?.kind === 'Secret');
}

function caSecretIn(file: string): KubeSecret {
  const found = secretsIn(file).find((s) => s.metadata?.labels?.[caLabel] !== undefined);
  if (!found) throw new Error(`${file}: no Secret labelled ${caLabel} (the CA a previous \`certs\` printed)`);
  return found;
}

export async function certsYaml(opts: CertsOptions): Promise<string> {
  if (opts.identities.length === 0) throw new Error('certs: give at least one --identity NAMESPACE/SERVICEACCOUNT');
  const identities = opts.identities.map(parseIdentity);
  let ca: IssuedCert;
  if (opts.ca) {
    const secret = caSecretIn(opts.ca);
    ca = await loadCa(decode(secret.data['tls.crt']), decode(secret.data['tls.key']));
  } else {
    ca = await createCa(opts.trustDomain);
  }
  const extraRoots = (opts.trust ?? []).map((file) => decode(caSecretIn(file).data['tls.crt']));
  const bundle = [ca.certPem, ...extraRoots].join('');
  const secrets: KubeSecret[] = [caSecret(ca)];
  for (const id of identities) {
    const leaf = await issueIdentity(ca, opts.trustDomain, id, { validHours: opts.validHours });
    secrets.push(identitySecret(opts.trustDomain, id, leaf, bundle));
  }
  const header =
    `# tunnel-shim certs: a development CA (trust domain ${opts.trustDomain}) and ${identities.length} identities.\n` +
    `# The CA Secret holds the CA's key: keep this file private; the shim never serves that Secret.\n`;
  return header + secrets.map((s) => YAML.stringify(s)).join('---\n');
}
