// mTLS tunnels whose certificates come from a real SPIRE agent: the shim only writes references to the
// agent's SDS socket (`bootstrap --sds unix:PATH`, SPIRE's secret names `default` and `ROOTCA`), each
// Envoy runs under its own uid and so gets its own SVID, and the terminator admits only the allowed one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import type { EnvoyProcess } from '../helpers/envoy.js';
import { Client, freePort, roundTrip, startEcho, type EchoServer } from '../helpers/net.js';
import { serviceYaml } from '../helpers/objects.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { startSpire, type Spire } from '../helpers/spire.js';
import { startEnvoyAs } from '../helpers/spire-envoy.js';
import { waitFor } from '../helpers/wait.js';

// uids no one else uses: SPIRE's unix attestor gives each its own identity.
const uids = { client: 47011, server: 47012, other: 47013 };

async function statSum(envoy: EnvoyProcess, pattern: RegExp): Promise<number> {
  let sum = 0;
  for (const [name, value] of await envoy.stats()) if (pattern.test(name)) sum += value;
  return sum;
}

describe('mTLS tunnels with certificates from a real SPIRE agent', () => {
  let spire: Spire;
  let shim: TestShim;
  let backend: EchoServer;
  const envoys: EnvoyProcess[] = [];
  let originator: EnvoyProcess;
  let terminator: EnvoyProcess;
  let servicePort: number;
  const authority = () => `secure.e2e.svc.cluster.local:${servicePort}`;

  /** An Envoy bootstrapped by `tunnel-shim bootstrap --sds unix:<agent socket>`, run as `uid`. */
  async function envoy(nodeId: string, role: string, uid: number, listenAddress: string): Promise<EnvoyProcess> {
    const started = await startEnvoyAs(nodeId, uid, async (dir) => {
      const args = ['bootstrap', '--role', role, '--node-id', nodeId, '--xds-address', shim.xdsAddress];
      args.push('--listen-address', listenAddress, '--access-log', `${dir}/access.log`);
      args.push('--sds', `unix:${spire.agentSocket}`, '--output', 'json');
      const result = await runCli(args);
      if (result.code !== 0) throw new Error(`tunnel-shim ${args.join(' ')}: ${result.stderr}`);
      return JSON.parse(result.stdout) as Record<string, unknown>;
    });
    envoys.push(started);
    return started;
  }

  beforeAll(async () => {
    backend = await startEcho('127.0.0.2', await freePort('127.0.0.2'), 'secure');
    spire = await startSpire({
      trustDomain: 'spire.test',
      workloads: [
        { identity: 'e2e/client', uid: uids.client },
        { identity: 'e2e/server', uid: uids.server },
        { identity: 'e2e/other', uid: uids.other },
      ],
    });
    const tunnelPort = await freePort('127.0.0.2');
    servicePort = await freePort();
    shim = await startShim(
      {
        'secure.yaml': serviceYaml({
          name: 'secure',
          namespace: 'e2e',
          clusterIP: '10.96.0.10',
          port: servicePort,
          annotations: {
            'tunnel-shim.io/tunnel-port': String(tunnelPort),
            'tunnel-shim.io/mtls': 'strict',
            'tunnel-shim.io/allowed-identities': spire.spiffeId('e2e/client'),
          },
          endpoints: [{ ip: '127.0.0.2', port: backend.port }],
        }),
      },
      { tls: { trustDomain: spire.trustDomain } },
    );
    terminator = await envoy('terminator', 'terminate', uids.server, '127.0.0.2');
    originator = await envoy('client', 'originate', uids.client, '127.0.0.1');
    await envoy('other', 'originate', uids.other, '127.0.0.4');
    await waitFor(
      'the tunnel through SPIRE certificates to work',
      () => roundTrip(servicePort).then(() => true),
      30_000,
      200,
    );
  });

  afterAll(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await shim?.stop();
    await spire?.stop();
    await backend?.close();
  });

  it('carries bytes; the terminator logs the originator SPIFFE ID; both count handshakes and SPIRE SDS', async () => {
    expect(await roundTrip(servicePort, 'hello through spire\n')).toBe('secure\nhello through spire\n');
    const entry = await waitFor('the terminator access log', () =>
      terminator.accessLog().find((e) => e.authority === authority() && e.response_code === 200),
    );
    expect(entry.peer_identity).toBe(spire.spiffeId('e2e/client'));
    expect(await statSum(originator, /^cluster\.originate\/e2e\/secure\/\d+\.ssl\.handshake$/)).toBeGreaterThan(0);
    expect(await statSum(terminator, /^listener\.127\.0\.0\.2_\d+\.ssl\.handshake$/)).toBeGreaterThan(0);
    for (const e of [originator, terminator]) {
      // The certificate and bundle came from the agent under SPIRE's names, none from the shim.
      expect(await e.stat('sds.default.update_success')).toBeGreaterThanOrEqual(1);
      expect(await e.stat('sds.ROOTCA.update_success')).toBeGreaterThanOrEqual(1);
      expect(await statSum(e, /^sds\.tunnel-shim\//)).toBe(0);
    }
  });

  it('answers 403 to another SPIRE identity, and the backend sees no connection', async () => {
    const before = backend.connections;
    const app = await Client.connect(servicePort, '127.0.0.4');
    app.socket.write('let me in\n');
    await waitFor('the refused tunnel to close', () => app.closed, 10_000);
    const entry = await waitFor('a 403 in the terminator log', () =>
      terminator.accessLog().find((e) => e.response_code === 403),
    );
    expect(entry.peer_identity).toBe(spire.spiffeId('e2e/other'));
    expect(app.received).toBe('');
    expect(backend.connections).toBe(before);
  });
});
