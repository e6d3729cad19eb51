// `tunnel-shim import-envoyfilter` on EnvoyFilter manifests written for these tests (one per patch
// kind), run as a process; its output is then read back by the shim's own model through `render`.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TCPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1alpha2/TCPRoute';
import { afterAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { repo, runCli } from '../helpers/cli.js';

const fixture = (name: string) => path.join(repo, 'test/fixtures/envoyfilter', name);
const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'import-'));

afterAll(() => fs.rmSync(outDir, { recursive: true, force: true }));

async function importFiles(...names: string[]) {
  const res = await runCli(['import-envoyfilter', ...names.map(fixture)]);
  const docs = YAML.parseAllDocuments(res.stdout)
    .map((d) => d.toJS())
    .filter(Boolean) as any[];
  const service = (ns: string, name: string) =>
    docs.find((d) => d.kind === 'Service' && d.metadata.namespace === ns && d.metadata.name === name);
  /** The comment lines printed right above an object. */
  const notesOf = (kind: string, ns: string, name: string) => {
    const chunk = res.stdout.split('\n---\n').find((c) => c.includes(`# ${kind} ${ns}/${name} from`)) ?? '';
    return chunk
      .split('\n')
      .filter((l) => l.startsWith('#'))
      .join('\n');
  };
  return { ...res, docs, service, notesOf };
}

/** Runs the shim's dry run on the imported YAML: what the model says about it. */
async function renderImported(text: string, name: string) {
  const file = path.join(outDir, `${name}.yaml`);
  fs.writeFileSync(file, text);
  return runCli(['render', '--source', `file:${file}`, '--role', 'originate', '--listen-address', '127.0.0.1']);
}

describe('import-envoyfilter', () => {
  it('tcp_proxy REPLACE settings and CLUSTER MERGE ring hash become annotations on the Service', async () => {
    const out = await importFiles('tcp-settings.yaml');
    expect(out.code).toBe(0);
    expect(out.service('payments', 'db')).toEqual({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: 'db',
        namespace: 'payments',
        annotations: {
          'tunnel-shim.io/tunnel': 'h2',
          'tunnel-shim.io/access-log': '/var/log/payments-db.log',
          'tunnel-shim.io/access-log-format': '%CONNECTION_ID% %UPSTREAM_HOST% %BYTES_SENT%',
          'tunnel-shim.io/hash-policy': 'source-ip',
          'tunnel-shim.io/idle-timeout': '15m',
          'tunnel-shim.io/lb-policy': 'RING_HASH',
          'tunnel-shim.io/max-connect-attempts': '3',
          'tunnel-shim.io/max-downstream-connection-duration': '8h',
          'tunnel-shim.io/metadata-match': '{tier: primary}',
        },
      },
      spec: { ports: [{ name: 'tcp-5432', port: 5432 }] },
    });
    const notes = out.notesOf('Service', 'payments', 'db');
    expect(notes).toContain('ring_hash_lb_config {"minimum_ring_size":2048}: no equivalent');
    expect(notes).toContain('stat_prefix payments_db: not carried over');
    expect(out.stdout).toMatch(
      /^# - EnvoyFilter gateways\/payments-db-tuning: spec\.configPatches\[2\]: HTTP_FILTER INSERT_BEFORE: no equiv/m,
    );
    expect(out.stdout).toMatch(
      /^# - EnvoyFilter gateways\/payments-db-tuning: workloadSelector\/targetRefs: no equivalent; an Envoy gets/m,
    );
    const rendered = await renderImported(out.stdout, 'tcp-settings');
    expect(rendered.stderr).toBe('');
    expect(rendered.code).toBe(0);
    // The shim's own translation of the imported Service carries the settings back into tcp_proxy.
    const listener = YAML.parse(rendered.stdout).listeners[0];
    expect(listener.filter_chains[0].filters[0].typed_config).toMatchObject({
      idle_timeout: '900s',
      max_connect_attempts: 3,
      max_downstream_connection_duration: '28800s',
      hash_policy: [{ source_ip: {} }],
    });
  });

  it(
    'weighted_clusters (camelCase fields) become a TCPRoute on the parent Service, per-backend metadata_match ' +
      'on the backend',
    async () => {
      const out = await importFiles('weighted.yaml');
      expect(out.code).toBe(0);
      const route = out.docs.find((d) => d.kind === 'TCPRoute');
      expect(route).toEqual({
        apiVersion: 'gateway.networking.k8s.io/v1alpha2',
        kind: 'TCPRoute',
        metadata: { name: 'queue-split', namespace: 'messaging' },
        spec: {
          parentRefs: [{ group: '', kind: 'Service', name: 'queue', port: 6379 }],
          rules: [
            {
              backendRefs: [
                { name: 'queue-stable', port: 6379, weight: 80 },
                { name: 'queue-next', port: 6379, weight: 20 },
              ],
            },
          ],
        },
      });
      expect(() => new TCPRoute(route).validate()).not.toThrow();
      expect(out.service('messaging', 'queue').metadata.annotations).toEqual({
        'tunnel-shim.io/tunnel': 'h2',
        'tunnel-shim.io/idle-timeout': '30s',
      });
      expect(out.service('messaging', 'queue-next').metadata.annotations).toEqual({
        'tunnel-shim.io/metadata-match': '{lane: canary}',
      });
      expect(out.service('messaging', 'queue-stable').metadata.annotations).toBeUndefined();
      const rendered = await renderImported(out.stdout, 'weighted');
      expect(rendered.code).toBe(0);
    },
  );

  it(
    'a tunneling_config tcp_proxy with CLUSTER ADD and LISTENER ADD that ends CONNECT becomes one Service; a ' +
      'subset cluster keeps its subset settings',
    async () => {
      const out = await importFiles('tunnel.yaml');
      expect(out.code).toBe(0);
      expect(out.service('warehouse', 'api').metadata.annotations).toEqual({
        'tunnel-shim.io/tunnel': 'h2-post',
        'tunnel-shim.io/headers-to-add': '{x-tenant: north, x-client: "%DOWNSTREAM_REMOTE_ADDRESS%"}',
        'tunnel-shim.io/hostname': '%REQUESTED_SERVER_NAME%:443',
        'tunnel-shim.io/post-path': '/tunnel/warehouse',
        'tunnel-shim.io/tunnel-port': '15020',
      });
      const apiNotes = out.notesOf('Service', 'warehouse', 'api');
      expect(apiNotes).toContain('domains ["*"] has no equivalent on purpose');
      expect(apiNotes).toContain("listener port 8443: originators listen on the Service's port (9090)");
      expect(apiNotes).toContain('add tunnel-shim.io/domains with the authorities terminators may accept');
      expect(out.service('analytics', 'reports').metadata.annotations).toEqual({
        'tunnel-shim.io/tunnel': 'h2',
        'tunnel-shim.io/default-subset': '{region: south}',
        'tunnel-shim.io/fallback-policy': 'DEFAULT_SUBSET',
        'tunnel-shim.io/metadata-match': '{region: north}',
      });
      expect(out.notesOf('Service', 'analytics', 'reports')).toContain(
        'endpoint metadata {region: north}, {region: south}: not carried over; label the Pods so',
      );
      // The one thing the importer cannot decide is exactly what the shim then asks for.
      const rendered = await renderImported(out.stdout, 'tunnel');
      expect(rendered.code).toBe(1);
      expect(rendered.stderr.trim().split('\n')).toEqual([
        expect.stringMatching(
          /Service warehouse\/api: metadata\.annotations\["tunnel-shim\.io\/hostname"\]: .*tunnel-shim\.io\/domains/,
        ),
      ]);
    },
  );

  it(
    'an HTTP/1.1 tunnel to a subset becomes tunnel h1; broken patches are named by file, line, object and ' + 'field',
    async () => {
      const out = await importFiles('h1-and-bad.yaml');
      expect(out.code).toBe(1);
      expect(out.service('finance', 'ledger').metadata.annotations).toEqual({
        'tunnel-shim.io/tunnel': 'h1',
        'tunnel-shim.io/domains': 'ledger.finance.svc.cluster.local:9100',
        'tunnel-shim.io/hostname': 'ledger.finance.svc.cluster.local:9100',
        'tunnel-shim.io/tunnel-port': '15030',
      });
      expect(out.notesOf('Service', 'finance', 'ledger')).toContain(
        'subset v2 (outbound|9100|v2|ledger.finance.svc.cluster.local): subsets are Pod labels here',
      );
      const errors = out.stderr.trim().split('\n');
      expect(errors).toContain(
        'note: ConfigMap finance/unrelated (' + fixture('h1-and-bad.yaml') + '): not an EnvoyFilter; skipped',
      );
      expect(errors).toContain(
        `error: ${fixture('h1-and-bad.yaml')}:62: EnvoyFilter finance/ledger-h1: ` +
          'spec.configPatches[4].applyTo: missing',
      );
      expect(errors).toContain(
        `error: ${fixture('h1-and-bad.yaml')}:60: EnvoyFilter finance/ledger-h1: ` +
          `spec.configPatches[3].patch.value.typed_config.cluster: a tcp_proxy needs cluster or ` +
          `weighted_clusters.clusters`,
      );
      const rendered = await renderImported(out.stdout, 'h1');
      expect(rendered.code).toBe(0);
    },
  );

  it('reads several files at once and says which file does not exist', async () => {
    const both = await importFiles('tcp-settings.yaml', 'weighted.yaml');
    expect(
      both.docs.filter((d) => d.kind === 'Service').map((d) => `${d.metadata.namespace}/${d.metadata.name}`),
    ).toEqual(['messaging/queue', 'messaging/queue-next', 'messaging/queue-stable', 'payments/db']);
    const missing = await runCli(['import-envoyfilter', fixture('nope.yaml')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('nope.yaml does not exist');
  });
});
