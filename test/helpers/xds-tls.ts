// Certificates for xDS over mutual TLS in tests: a CA, the shim's certificate files, client credentials per
// identity (from the dev CA of `tunnel-shim certs`), and a second CA for clients that should not be trusted.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { createCa, issueIdentity, parseIdentity, spiffeId, type IssuedCert } from '../../src/cli/dev-ca.js';
import type { Connect } from './ads-client.js';

export const trustDomain = 'cluster.local';
export const shimIdentity = spiffeId(trustDomain, { namespace: 'tunnel-shim', serviceAccount: 'tunnel-shim' });

export interface TlsFixture {
  dir: string;
  ca: IssuedCert;
  /** The shim's files, for serve --xds-tls-cert/--xds-tls-key/--xds-client-ca. */
  certFile: string;
  keyFile: string;
  caFile: string;
  /** Issues a leaf for `ns/sa` from this CA (or `from`), as files under dir/NAME: tls.crt, tls.key, ca.crt. */
  issue(identity: string, from?: IssuedCert, name?: string): Promise<{ dir: string; leaf: IssuedCert }>;
  /** A new certificate for the shim, from the same CA. */
  issueShim(): Promise<IssuedCert>;
  /** Replaces a file as a Secret update or an editor does (write, then rename over it). */
  replace(file: string, text: string): void;
  remove(): void;
}

export async function tlsFixture(): Promise<TlsFixture> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xds-tls-'));
  const ca = await createCa(trustDomain);
  const fixture: TlsFixture = {
    dir,
    ca,
    certFile: path.join(dir, 'shim.crt'),
    keyFile: path.join(dir, 'shim.key'),
    caFile: path.join(dir, 'ca.crt'),
    async issue(identity, from = ca, name = identity.replace('/', '-')) {
      const leaf = await issueIdentity(from, trustDomain, parseIdentity(identity));
      const out = path.join(dir, name);
      fs.mkdirSync(out, { recursive: true });
      fs.writeFileSync(path.join(out, 'tls.crt'), leaf.certPem);
      fs.writeFileSync(path.join(out, 'tls.key'), leaf.keyPem);
      fs.writeFileSync(path.join(out, 'ca.crt'), ca.certPem);
      return { dir: out, leaf };
    },
    issueShim: () => issueIdentity(ca, trustDomain, { namespace: 'tunnel-shim', serviceAccount: 'tunnel-shim' }),
    replace(file, text) {
      fs.writeFileSync(`${file}.tmp`, text);
      fs.renameSync(`${file}.tmp`, file);
    },
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
  fs.writeFileSync(fixture.caFile, ca.certPem);
  const shim = await fixture.issueShim();
  fs.writeFileSync(fixture.certFile, shim.certPem);
  fs.writeFileSync(fixture.keyFile, shim.keyPem);
  return fixture;
}

/**
 * A client's TLS: trusts `ca`, presents `leaf` (if any), and checks the shim by its SPIFFE ID (the
 * certificate has no DNS or IP name, as SPIFFE certificates often do not). `seen` gets each server
 * certificate's serial. Each client gets its own connection (no subchannel shared across tests).
 */
export function tlsConnect(ca: IssuedCert, leaf?: IssuedCert, seen?: string[]): Connect {
  const credentials = grpc.credentials.createSsl(
    Buffer.from(ca.certPem),
    leaf ? Buffer.from(leaf.keyPem) : null,
    leaf ? Buffer.from(leaf.certPem) : null,
    {
      checkServerIdentity: (_host: string, cert: PeerCertificate) => {
        seen?.push(cert.serialNumber);
        const ok = (cert.subjectaltname ?? '').split(', ').includes(`URI:${shimIdentity}`);
        return ok ? undefined : new Error(`server certificate is not ${shimIdentity}: ${cert.subjectaltname}`);
      },
    },
  );
  // A server name that is not an IP (Node warns on an IP): the shim is checked by its URI SAN above anyway.
  const options = { 'grpc.use_local_subchannel_pool': 1, 'grpc.ssl_target_name_override': 'tunnel-shim' };
  return { credentials, options };
}
