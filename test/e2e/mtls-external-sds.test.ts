// Certificates from an external SDS server (a SPIRE agent's socket, here a plain SDS server speaking
// the same protocol): the shim only writes references (SPIRE's names `default` and `ROOTCA`, the
// `tunnel-shim-sds` cluster that `bootstrap --sds` writes) and serves no key; each Envoy fetches its
// own certificate from its own socket, and the tunnel is mTLS with the originator's identity logged.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issue, testCa, type TestIdentity } from '../helpers/certs.js';
import { startEnvoy, type EnvoyProcess } from '../helpers/envoy.js';
import { freePort, roundTrip, startEcho, type EchoServer } from '../helpers/net.js';
import { serviceYaml } from '../helpers/objects.js';
import { startSdsServer, type SdsServer } from '../helpers/sds-server.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { waitFor } from '../helpers/wait.js';

describe('mTLS with certificates from an external SDS server', () => {
  let shim: TestShim;
  let originator: EnvoyProcess;
  let terminator: EnvoyProcess;
  let backend: EchoServer;
  let client: TestIdentity;
  let server: TestIdentity;
  const agents: SdsServer[] = [];
  let appPort: number;

  beforeAll(async () => {
    const ca = await testCa();
    [client, server] = await Promise.all([issue(ca, 'ext/client'), issue(ca, 'ext/server')]);
    for (const who of [client, server])
      agents.push(await startSdsServer({ certPem: who.leaf.certPem, keyPem: who.leaf.keyPem, bundle: ca.certPem }));
    backend = await startEcho('127.0.0.2', await freePort('127.0.0.2'), 'ext');
    appPort = await freePort();
    // Identity Secrets exist too: with an external SDS server none of them may be served.
    shim = await startShim(
      {
        'ext.yaml': serviceYaml({
          name: 'db',
          namespace: 'ext',
          port: appPort,
          annotations: {
            'tunnel-shim.io/tunnel-port': String(await freePort('127.0.0.2')),
            'tunnel-shim.io/mtls': 'strict',
          },
          endpoints: [{ ip: '127.0.0.2', port: backend.port }],
        }),
        'certs.yaml': [client.yaml, server.yaml].join('---\n'),
      },
      { tls: { insecureIdentities: true } },
    );
    [originator, terminator] = await Promise.all([
      startEnvoy({
        role: 'originate',
        nodeId: 'client',
        xdsAddress: shim.xdsAddress,
        listenAddress: '127.0.0.1',
        identity: 'ext/client',
        sds: `unix:${agents[0]!.socket}`,
      }),
      startEnvoy({
        role: 'terminate',
        nodeId: 'server',
        xdsAddress: shim.xdsAddress,
        identity: 'ext/server',
        sds: `unix:${agents[1]!.socket}`,
      }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([originator?.stop(), terminator?.stop()]);
    await shim?.stop();
    await Promise.all([...agents.map((a) => a.stop()), backend?.close()]);
  });

  it('carries bytes over mTLS with SVIDs from the SDS sockets; the shim serves no key', async () => {
    await waitFor('the tunnel', () => roundTrip(appPort).then(() => true), 30_000, 200);
    expect(await roundTrip(appPort, 'via spire names\n')).toBe('ext\nvia spire names\n');
    const entry = await waitFor('terminator log', () => terminator.accessLog().find((e) => e.response_code === 200));
    expect(entry.peer_identity).toBe(client.id);
    expect(String(entry.peer_serial).toLowerCase()).toBe(client.serial);
    for (const agent of agents) expect([...agent.requested].sort()).toEqual(['ROOTCA', 'default']);
    // Nothing came from the shim under its own names.
    for (const envoy of [originator, terminator]) {
      const dump = await envoy.get('/config_dump?resource=dynamic_active_secrets');
      expect(dump).not.toContain('tunnel-shim/identity');
      expect(dump).toContain('"name": "default"');
    }
  });
});
