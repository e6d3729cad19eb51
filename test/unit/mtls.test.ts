// mTLS: what a node is served of Secrets, and the checks of the mTLS annotations and of identity
// Secrets. The translation itself is the golden case test/golden/mtls (views with and without identities).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { diagnosticLines, render } from '../../src/render.js';
import { parseYamlObjects } from '../../src/sources/yaml.js';
import type { NodeView } from '../../src/translate/view.js';
import { buildModel } from '../../src/model/build.js';
import { defaultModelOptions } from '../../src/model/tunnel.js';
import { parseAllowedIdentities, spiffeMatcher } from '../../src/model/mtls.js';
import { issue, testCa } from '../helpers/certs.js';

const caseFile = path.join(path.dirname(new URL(import.meta.url).pathname), '../golden/mtls/in.yaml');
const client = 'spiffe://cluster.local/ns/tls/sa/client';

describe('mTLS translation', () => {
  it('serves a node only its own identity, and redacts the key wherever resources are shown', () => {
    const parsed = parseYamlObjects('mtls/in.yaml', fs.readFileSync(caseFile, 'utf8'));
    const state = { objects: parsed.objects, diagnostics: [] };
    const secrets = (view: NodeView) => render(state, view).resources.secrets ?? [];
    expect(secrets({ role: 'originate' })).toEqual([]);
    expect(secrets({ role: 'originate', identity: 'spiffe://cluster.local/ns/tls/sa/nobody' })).toEqual([]);
    expect(secrets({ role: 'originate', identity: client, sds: 'unix:/run/sds.sock' })).toEqual([]);
    const mine = JSON.stringify(secrets({ role: 'originate', identity: client }));
    expect(mine).toContain('[redacted]');
    expect(mine).not.toContain('PRIVATE KEY');
  });
});

describe('mTLS annotations and identity Secrets', () => {
  it('checks allowed identities: SPIFFE IDs, * only as a whole segment', () => {
    expect(parseAllowedIdentities('spiffe://cluster.local/ns/a/sa/b, spiffe://cluster.local/ns/c/sa/*')).toEqual({
      value: ['spiffe://cluster.local/ns/a/sa/b', 'spiffe://cluster.local/ns/c/sa/*'],
    });
    expect(parseAllowedIdentities('spiffe://cluster.local/ns/c/sa/web-*')).toMatchObject({
      error: expect.stringContaining('whole path segment'),
    });
    expect(parseAllowedIdentities('web')).toMatchObject({ error: expect.stringContaining('not a SPIFFE ID') });
    expect(parseAllowedIdentities(' , ')).toMatchObject({ error: expect.stringContaining('lists no identity') });
    expect(spiffeMatcher('spiffe://td/ns/c/sa/*')).toEqual({ safe_regex: { regex: '^spiffe://td/ns/c/sa/[^/]+$' } });
  });

  it('names the Secret and field of every certificate problem, and keeps the last good certificate', async () => {
    const ca = await testCa();
    const good = await issue(ca, 'tls/web');
    const objects = (yaml: string) => parseYamlObjects('certs.yaml', yaml).objects;
    const first = buildModel(objects(good.yaml), defaultModelOptions);
    expect(first.tls?.identities.get(good.id)?.serial).toBe(good.serial);
    // The SAN no longer matches the annotation: an error on tls.crt, the last good certificate stays.
    const lying = good.yaml.replace(good.id, 'spiffe://cluster.local/ns/tls/sa/admin');
    const second = buildModel(objects(lying), defaultModelOptions, first);
    const lines = diagnosticLines(second.diagnostics);
    expect(lines.join('\n')).toContain(
      'Secret tls/web-identity: data["tls.crt"]: the certificate\'s URI SAN (spiffe://cluster.local/ns/tls/sa/web)',
    );
    expect(second.tls?.identities.get(good.id)?.serial).toBe(good.serial);
    // Deleted: a warning naming the Secret, still the last good certificate (never plaintext).
    const third = buildModel([], defaultModelOptions, second);
    expect(diagnosticLines(third.diagnostics).join('\n')).toMatch(/Secret tls\/web-identity: .*was deleted/);
    expect(third.tls?.identities.get(good.id)?.serial).toBe(good.serial);
    // Wrong namespace, and a key that is not the certificate's.
    const moved = good.yaml.replace('namespace: tls', 'namespace: other');
    expect(diagnosticLines(buildModel(objects(moved), defaultModelOptions).diagnostics).join('\n')).toContain(
      'must be in its own namespace (other)',
    );
    const other = await issue(ca, 'tls/web');
    const swapped = good.yaml.replace(/tls\.key: .*/, other.yaml.match(/tls\.key: .*/)![0]);
    expect(diagnosticLines(buildModel(objects(swapped), defaultModelOptions).diagnostics).join('\n')).toContain(
      'data["tls.key"]: is not tls.crt\'s key',
    );
  });

  it('warns on a strict Service whose terminators have no certificate', () => {
    const parsed = parseYamlObjects('mtls/in.yaml', fs.readFileSync(caseFile, 'utf8'));
    const objects = parsed.objects.filter((o) => o.object.metadata?.name !== 'server-identity');
    const lines = diagnosticLines(buildModel(objects, defaultModelOptions).diagnostics).join('\n');
    expect(lines).toContain(
      'Service tls/strict: metadata.annotations["tunnel-shim.io/mtls"]: strict, but no identity Secret holds ' +
        'spiffe://cluster.local/ns/tls/sa/server',
    );
    expect(
      diagnosticLines(buildModel(objects, { ...defaultModelOptions, externalSds: true }).diagnostics),
    ).not.toContain(expect.stringContaining('CertificateMissing'));
  });

  it('allowed-identities needs mTLS (not disable)', () => {
    const yaml = `apiVersion: v1
kind: Service
metadata:
  name: s
  namespace: n
  annotations: { tunnel-shim.io/tunnel: h2, tunnel-shim.io/allowed-identities: "spiffe://cluster.local/ns/n/sa/a" }
spec: { clusterIP: 10.0.0.1, ports: [{ port: 80 }] }
`;
    const objects = parseYamlObjects('s.yaml', yaml).objects;
    // Under the default (auto) the terminators route it on the mTLS chain: a plaintext peer gets 403.
    expect(diagnosticLines(buildModel(objects, defaultModelOptions).diagnostics)).toEqual([]);
    const disabled = buildModel(objects, { ...defaultModelOptions, mtlsDefault: 'disable' });
    expect(diagnosticLines(disabled.diagnostics).join('\n')).toContain(
      'needs tunnel-shim.io/mtls strict, permissive or auto',
    );
  });
});
