// Auto mTLS, the default mode (model/mtls.ts, translate/tls.ts): terminators accept both chains, and
// an originator or relay uses TLS exactly when it surely has a certificate and so has every identity
// that may serve the Service (or an external SDS server serves them). The whole decision table.
import { beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../src/model/build.js';
import type { MtlsMode } from '../../src/model/mtls.js';
import { defaultModelOptions } from '../../src/model/tunnel.js';
import { parseYamlObjects } from '../../src/sources/yaml.js';
import { translate } from '../../src/translate/index.js';
import { objectOf } from '../../src/translate/resources.js';
import type { NodeView } from '../../src/translate/view.js';
import { issue, testCa } from '../helpers/certs.js';

const id = (sa: string) => `spiffe://cluster.local/ns/auto/sa/${sa}`;

/** A Service without tunnel-shim.io/mtls, served by Pods of `account` (unknown Pods: any identity of auto/). */
function service(name: string, ip: string, account?: string): string {
  const pod = account
    ? `---
apiVersion: v1
kind: Pod
metadata: { name: ${name}-0, namespace: auto }
spec: { serviceAccountName: ${account} }
status: { podIP: ${ip} }
`
    : '';
  return `apiVersion: v1
kind: Service
metadata:
  name: ${name}
  namespace: auto
  annotations: { tunnel-shim.io/tunnel: h2, tunnel-shim.io/relay-port: "15010" }
spec: { clusterIP: 10.96.7.${ip.split('.')[3]}, ports: [{ name: tcp, port: 80 }] }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: ${name}-1, namespace: auto, labels: { kubernetes.io/service-name: ${name} } }
addressType: IPv4
ports: [{ name: tcp, port: 8080 }]
endpoints: [{ addresses: [${ip}] }]
${pod}`;
}

// Serving identities: `server` has a Secret, `bare` has none, `unknown` is any identity of the namespace.
const services = { certified: ['10.7.0.1', 'server'], uncertified: ['10.7.0.2', 'bare'], unknown: ['10.7.0.3'] };
const nodes: Record<string, Omit<NodeView, 'role'>> = {
  none: {},
  'identity without Secret': { identity: id('bare') },
  'identity with Secret': { identity: id('client') },
  'external SDS': { identity: id('bare'), sds: 'unix:/run/spire/agent.sock' },
};

describe('auto mTLS (the default mode)', () => {
  let secrets = '';
  beforeAll(async () => {
    const ca = await testCa();
    secrets = (await Promise.all([issue(ca, 'auto/client'), issue(ca, 'auto/server')]))
      .map((c) => c.yaml)
      .join('---\n');
  });

  function build(options: { externalSds?: boolean; mtlsDefault?: MtlsMode } = {}) {
    const docs = Object.entries(services).map(([name, [ip, sa]]) => service(name, ip!, sa));
    const text = [...docs, secrets].join('---\n');
    return buildModel(parseYamlObjects('auto.yaml', text).objects, { ...defaultModelOptions, ...options });
  }

  /** Per Service: whether the node's tunnel cluster for it is TLS. */
  function tlsBy(model: ReturnType<typeof build>, view: NodeView): Record<string, boolean> {
    const out: Record<string, boolean> = {};
    for (const r of translate(model, view).resources.cluster) {
      const name = /auto\/([a-z]+)/.exec(r.name)?.[1];
      if (name) out[name] = (objectOf(r) as { transport_socket?: unknown }).transport_socket !== undefined;
    }
    return out;
  }

  for (const externalSds of [false, true])
    for (const [node, fields] of Object.entries(nodes))
      for (const role of ['originate', 'relay'] as const)
        it(`${role}, node ${node}, serve --sds ${externalSds ? 'given' : 'not given'}`, () => {
          const certified = node === 'identity with Secret' || node === 'external SDS';
          const expected = {
            certified: certified,
            uncertified: certified && externalSds,
            unknown: certified && externalSds,
          };
          expect(tlsBy(build({ externalSds }), { role, ...fields })).toEqual(expected);
        });

  it('--mtls disable: plaintext whatever the certificates', () => {
    const model = build({ mtlsDefault: 'disable' });
    const view: NodeView = { role: 'originate', identity: id('client') };
    expect(tlsBy(model, view)).toEqual({ certified: false, uncertified: false, unknown: false });
  });

  it('terminators route the Service on both chains, as permissive does', () => {
    const chainsOf = (view: NodeView) =>
      translate(build(), view).resources.listener.flatMap((l) =>
        ((objectOf(l) as { filter_chains?: { name: string }[] }).filter_chains ?? []).map((c) => c.name),
      );
    const routes = (view: NodeView) => translate(build(), view).resources.route.map((r) => JSON.stringify(objectOf(r)));
    const server: NodeView = { role: 'terminate', listenAddress: '10.7.0.1', identity: id('server') };
    expect(chainsOf(server).sort()).toEqual(['endpoint/10.7.0.1', 'endpoint/10.7.0.1/mtls']);
    // Each chain's routes hold the Service.
    expect(routes(server).filter((r) => r.includes('"certified.auto.svc.cluster.local:80"')).length).toBe(2);
    // A terminator without a certificate has only the plaintext chain, as before identities existed.
    expect(chainsOf({ role: 'terminate', listenAddress: '10.7.0.2' })).toEqual(['endpoint/10.7.0.2']);
  });
});
