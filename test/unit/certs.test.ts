import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { certsYaml } from '../../src/cli/certs.js';

interface Secret {
  metadata: { name: string; namespace: string; labels: Record<string, string>; annotations?: Record<string, string> };
  data: Record<string, string>;
}

const pem = (s: Secret, key: string) => Buffer.from(s.data[key]!, 'base64').toString('utf8');
const parse = (text: string) => YAML.parseAllDocuments(text).map((d) => d.toJS() as Secret);
const roots = (bundle: string) => bundle.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];

describe('tunnel-shim certs (development CA)', () => {
  it('prints a CA and one kubernetes.io/tls Secret per identity, each leaf a SPIFFE SVID the CA signed', async () => {
    const [ca, web, db] = parse(await certsYaml({ trustDomain: 'example.org', identities: ['shop/web', 'shop/db'] }));
    const caCert = new crypto.X509Certificate(pem(ca!, 'tls.crt'));
    expect(caCert.ca).toBe(true);
    for (const [secret, sa] of [
      [web!, 'web'],
      [db!, 'db'],
    ] as const) {
      expect(secret.metadata).toMatchObject({ name: `${sa}-identity`, namespace: 'shop' });
      expect(secret.metadata.annotations!['tunnel-shim.io/identity']).toBe(`spiffe://example.org/ns/shop/sa/${sa}`);
      const leaf = new crypto.X509Certificate(pem(secret, 'tls.crt'));
      expect(leaf.ca).toBe(false);
      expect(leaf.subjectAltName).toBe(`URI:spiffe://example.org/ns/shop/sa/${sa}`);
      expect(leaf.checkIssued(caCert) && leaf.verify(caCert.publicKey)).toBe(true);
      const key = crypto.createPrivateKey(pem(secret, 'tls.key'));
      expect(leaf.checkPrivateKey(key)).toBe(true);
      expect(roots(pem(secret, 'ca.crt'))).toEqual([pem(ca!, 'tls.crt').trim()]);
    }
  });

  it('--ca reissues from the same CA (new serial), --trust adds another root to every bundle', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'certs-'));
    try {
      const first = path.join(dir, 'first.yaml');
      const other = path.join(dir, 'other.yaml');
      fs.writeFileSync(first, await certsYaml({ trustDomain: 'cluster.local', identities: ['a/b'] }));
      fs.writeFileSync(other, await certsYaml({ trustDomain: 'cluster.local', identities: ['a/b'] }));
      const [ca1, leaf1] = parse(fs.readFileSync(first, 'utf8'));
      const [ca2, leaf2] = parse(
        await certsYaml({ trustDomain: 'cluster.local', identities: ['a/b'], ca: first, trust: [other] }),
      );
      expect(pem(ca2!, 'tls.crt')).toBe(pem(ca1!, 'tls.crt'));
      const [old, renewed] = [leaf1!, leaf2!].map((s) => new crypto.X509Certificate(pem(s, 'tls.crt')));
      expect(renewed!.serialNumber).not.toBe(old!.serialNumber);
      expect(renewed!.verify(new crypto.X509Certificate(pem(ca1!, 'tls.crt')).publicKey)).toBe(true);
      const otherCa = parse(fs.readFileSync(other, 'utf8'))[0]!;
      expect(roots(pem(leaf2!, 'ca.crt'))).toEqual([pem(ca1!, 'tls.crt').trim(), pem(otherCa, 'tls.crt').trim()]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an identity that is not NAMESPACE/SERVICEACCOUNT', async () => {
    await expect(certsYaml({ trustDomain: 'cluster.local', identities: ['web'] })).rejects.toThrow(
      'identity "web": expected NAMESPACE/SERVICEACCOUNT',
    );
  });
});
