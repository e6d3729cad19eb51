// Auto mTLS, the default mode, between real Envoys: no `serve --mtls` flag and no tunnel-shim.io/mtls
// annotation. Where both sides have certificates the tunnel is mTLS (the terminator logs the
// originator's SPIFFE ID, both Envoys count handshakes); where the terminator's identity has none the
// same originator sends plaintext and the tunnel still works.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issue, testCa, type TestIdentity } from '../helpers/certs.js';
import { startEnvoy, type EnvoyProcess } from '../helpers/envoy.js';
import { Client, freePort, roundTrip, startEcho, type EchoServer } from '../helpers/net.js';
import { podYaml, serviceYaml } from '../helpers/objects.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { waitFor } from '../helpers/wait.js';

async function statSum(envoy: EnvoyProcess, pattern: RegExp): Promise<number> {
  let sum = 0;
  for (const [name, value] of await envoy.stats()) if (pattern.test(name)) sum += value;
  return sum;
}

/** A Pod running as `account`, so the Service's serving identity is exactly that account's. */
const pod = (name: string, ip: string, account: string) =>
  podYaml({ name, namespace: 'e2e', ip, labels: {} }).replace(
    'status:',
    `spec:\n  serviceAccountName: ${account}\nstatus:`,
  );

describe('auto mTLS (no --mtls flag, no annotation)', () => {
  let shim: TestShim;
  let client: TestIdentity;
  let originator: EnvoyProcess;
  let certified: EnvoyProcess;
  let bare: EnvoyProcess;
  let backends: EchoServer[] = [];
  let securePort: number;
  let plainPort: number;
  const authority = (name: string, port: number) => `${name}.e2e.svc.cluster.local:${port}`;

  beforeAll(async () => {
    const ca = await testCa();
    const server = await issue(ca, 'e2e/server');
    client = await issue(ca, 'e2e/client');
    const tunnelPort = await freePort('127.0.0.2');
    backends = await Promise.all([
      startEcho('127.0.0.2', await freePort('127.0.0.2'), 'secure'),
      startEcho('127.0.0.3', await freePort('127.0.0.3'), 'plain'),
    ]);
    [securePort, plainPort] = [await freePort(), await freePort()];
    const annotations = { 'tunnel-shim.io/tunnel-port': String(tunnelPort) };
    shim = await startShim(
      {
        // Served by e2e/server, which has a Secret.
        'secure.yaml': serviceYaml({
          name: 'secure',
          namespace: 'e2e',
          clusterIP: '10.96.0.10',
          port: securePort,
          annotations,
          endpoints: [{ ip: '127.0.0.2', port: backends[0]!.port }],
        }),
        // Served by e2e/bare, which has none: its terminator has no certificate.
        'plain.yaml': serviceYaml({
          name: 'plain',
          namespace: 'e2e',
          clusterIP: '10.96.0.11',
          port: plainPort,
          annotations,
          endpoints: [{ ip: '127.0.0.3', port: backends[1]!.port }],
        }),
        'pods.yaml': [pod('server-0', '127.0.0.2', 'server'), pod('bare-0', '127.0.0.3', 'bare')].join('---\n'),
        'certs.yaml': [client.yaml, server.yaml].join('---\n'),
      },
      { tls: { insecureIdentities: true } },
    );
    const xdsAddress = shim.xdsAddress;
    [certified, bare, originator] = await Promise.all([
      startEnvoy({
        role: 'terminate',
        nodeId: 'server',
        xdsAddress,
        listenAddress: '127.0.0.2',
        identity: 'e2e/server',
      }),
      startEnvoy({ role: 'terminate', nodeId: 'bare', xdsAddress, listenAddress: '127.0.0.3' }),
      startEnvoy({
        role: 'originate',
        nodeId: 'client',
        xdsAddress,
        listenAddress: '127.0.0.1',
        identity: 'e2e/client',
      }),
    ]);
    await waitFor(
      'both tunnels to work',
      async () => {
        await Promise.all([roundTrip(securePort), roundTrip(plainPort)]);
        return true;
      },
      30_000,
      200,
    );
  });

  afterAll(async () => {
    await Promise.all([originator?.stop(), certified?.stop(), bare?.stop()]);
    await shim?.stop();
    await Promise.all(backends.map((b) => b.close()));
  });

  it('is mTLS where both sides have certificates: the peer SPIFFE ID logged, handshakes on both sides', async () => {
    expect(await roundTrip(securePort, 'hello\n')).toBe('secure\nhello\n');
    const entry = await waitFor('terminator access log', () =>
      certified.accessLog().find((e) => e.authority === authority('secure', securePort) && e.response_code === 200),
    );
    expect(entry.peer_identity).toBe(client.id);
    expect(await statSum(originator, /^cluster\.originate\/e2e\/secure\/\d+\.ssl\.handshake$/)).toBeGreaterThan(0);
    expect(await statSum(certified, /^listener\.127\.0\.0\.2_\d+\.ssl\.handshake$/)).toBeGreaterThan(0);
  });

  it('is plaintext to a terminator without a certificate, and the tunnel works', async () => {
    expect(await roundTrip(plainPort, 'hello\n')).toBe('plain\nhello\n');
    const entry = await waitFor('terminator access log', () =>
      bare.accessLog().find((e) => e.authority === authority('plain', plainPort) && e.response_code === 200),
    );
    expect(entry.peer_identity ?? '-').toBe('-');
    expect(await statSum(originator, /^cluster\.originate\/e2e\/plain\/\d+\.upstream_cx_total$/)).toBeGreaterThan(0);
    expect(await statSum(originator, /^cluster\.originate\/e2e\/plain\/\d+\.ssl\.handshake$/)).toBe(0);
  });

  it("keeps mTLS when the terminator's Secret is deleted: its last good certificate stays, no downgrade", async () => {
    shim.write('certs.yaml', client.yaml);
    await waitFor('a warning naming the Secret', async () => {
      const diagnostics = JSON.stringify(await (await fetch(`${shim.adminUrl}/debug/diagnostics`)).json());
      return /Secret e2e\/server-identity[^"]*was deleted/.test(diagnostics);
    });
    const secure = shim.shim.pipeline.model!.tunnels.find((t) => t.service.name === 'secure');
    expect(secure?.servedCertified).toBe(true);
    const logged = () => certified.accessLog().filter((e) => e.authority === authority('secure', securePort));
    const before = logged().length;
    const app = await Client.connect(securePort);
    expect(await app.echo('after delete\n')).toContain('after delete');
    app.close();
    await waitFor('the new tunnel in the access log', () => logged().length > before);
    expect(logged().every((e) => e.peer_identity === client.id)).toBe(true);
  });
});
