// Identity Secrets for tests, from the development CA (src/cli/dev-ca.ts), as YAML for the file source.
import http2 from 'node:http2';
import YAML from 'yaml';
import {
  createCa,
  identitySecret,
  issueIdentity,
  parseIdentity,
  spiffeId,
  type IssuedCert,
} from '../../src/cli/dev-ca.js';

export const trustDomain = 'cluster.local';

export interface TestIdentity {
  /** `ns/sa` */
  name: string;
  id: string;
  leaf: IssuedCert;
  /** The Secret as YAML. */
  yaml: string;
  serial: string;
}

/** Issues `ns/sa` from `ca`, trusting `bundle` (the CA's certificate unless a rollover says otherwise). */
export async function issue(
  ca: IssuedCert,
  name: string,
  opts: { bundle?: string; validHours?: number } = {},
): Promise<TestIdentity> {
  const who = parseIdentity(name);
  const leaf = await issueIdentity(ca, trustDomain, who, { validHours: opts.validHours ?? 2 });
  const secret = identitySecret(trustDomain, who, leaf, opts.bundle ?? ca.certPem);
  return {
    name,
    id: spiffeId(trustDomain, who),
    leaf,
    yaml: YAML.stringify(secret),
    serial: leaf.cert.serialNumber.toLowerCase(),
  };
}

export async function testCa(): Promise<IssuedCert> {
  return createCa(trustDomain, { validHours: 4 });
}

/** A plaintext HTTP/2 CONNECT straight to the terminator: its status. */
export function plaintextConnect(host: string, port: number, authority: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const client = http2.connect(`http://${host}:${port}`);
    const timer = setTimeout(() => (client.destroy(), reject(new Error('no answer to plaintext CONNECT'))), 5000);
    client.on('error', (e) => (clearTimeout(timer), reject(e)));
    const req = client.request({ ':method': 'CONNECT', ':authority': authority });
    req.on('response', (h) => {
      clearTimeout(timer);
      resolve(Number(h[':status']));
      client.close();
    });
    req.on('error', () => {});
  });
}
