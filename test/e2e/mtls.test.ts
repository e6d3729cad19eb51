// Mutual TLS between real Envoys with certificates the shim serves over SDS (file source): bytes go
// through, the terminator logs the originator's SPIFFE ID and serial, both Envoys count handshakes,
// allowed identities are enforced per route (403, no backend connection), a plaintext client never
// reaches a strict Service, and permissive accepts both.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issue, plaintextConnect, testCa, type TestIdentity } from '../helpers/certs.js';
import { startEnvoy, type EnvoyProcess } from '../helpers/envoy.js';
import { Client, freePort, roundTrip, startEcho, type EchoServer } from '../helpers/net.js';
import { serviceYaml } from '../helpers/objects.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { waitFor } from '../helpers/wait.js';

/** Sum of the stats whose names match. */
async function statSum(envoy: EnvoyProcess, pattern: RegExp): Promise<number> {
  let sum = 0;
  for (const [name, value] of await envoy.stats()) if (pattern.test(name)) sum += value;
  return sum;
}

describe('mTLS tunnels with certificates served over SDS', () => {
  let shim: TestShim;
  let client: TestIdentity;
  let other: TestIdentity;
  let server: TestIdentity;
  let originator: EnvoyProcess;
  let intruder: EnvoyProcess;
  let terminator: EnvoyProcess;
  let secureBackend: EchoServer;
  let permBackend: EchoServer;
  let guardedBackend: EchoServer;
  let guardedPort: number;
  let tunnelPort: number;
  let securePort: number;
  let permPort: number;
  const authority = (name: string, port: number) => `${name}.e2e.svc.cluster.local:${port}`;

  beforeAll(async () => {
    const ca = await testCa();
    [client, other, server] = await Promise.all([
      issue(ca, 'e2e/client'),
      issue(ca, 'e2e/other'),
      issue(ca, 'e2e/server'),
    ]);
    tunnelPort = await freePort('127.0.0.2');
    secureBackend = await startEcho('127.0.0.2', await freePort('127.0.0.2'), 'secure');
    permBackend = await startEcho('127.0.0.2', await freePort('127.0.0.2'), 'perm');
    guardedBackend = await startEcho('127.0.0.2', await freePort('127.0.0.2'), 'guarded');
    guardedPort = await freePort();
    securePort = await freePort();
    permPort = await freePort();
    const common = { namespace: 'e2e', clusterIP: '10.96.0.10' };
    shim = await startShim(
      {
        'secure.yaml': serviceYaml({
          ...common,
          name: 'secure',
          port: securePort,
          annotations: {
            'tunnel-shim.io/tunnel-port': String(tunnelPort),
            'tunnel-shim.io/mtls': 'strict',
            'tunnel-shim.io/allowed-identities': client.id,
          },
          endpoints: [{ ip: '127.0.0.2', port: secureBackend.port }],
        }),
        'perm.yaml': serviceYaml({
          ...common,
          name: 'perm',
          clusterIP: '10.96.0.11',
          port: permPort,
          annotations: { 'tunnel-shim.io/tunnel-port': String(tunnelPort), 'tunnel-shim.io/mtls': 'permissive' },
          endpoints: [{ ip: '127.0.0.2', port: permBackend.port }],
        }),
        // Permissive, but only one identity allowed: a plaintext peer has no identity to allow.
        'guarded.yaml': serviceYaml({
          ...common,
          name: 'guarded',
          clusterIP: '10.96.0.12',
          port: guardedPort,
          annotations: {
            'tunnel-shim.io/tunnel-port': String(tunnelPort),
            'tunnel-shim.io/mtls': 'permissive',
            'tunnel-shim.io/allowed-identities': client.id,
          },
          endpoints: [{ ip: '127.0.0.2', port: guardedBackend.port }],
        }),
        'certs.yaml': [client.yaml, other.yaml, server.yaml].join('---\n'),
      },
      { tls: { insecureIdentities: true } },
    );
    const xdsAddress = shim.xdsAddress;
    [terminator, originator, intruder] = await Promise.all([
      startEnvoy({ role: 'terminate', nodeId: 'terminator', xdsAddress, identity: 'e2e/server' }),
      startEnvoy({
        role: 'originate',
        nodeId: 'client',
        xdsAddress,
        listenAddress: '127.0.0.1',
        identity: 'e2e/client',
      }),
      startEnvoy({ role: 'originate', nodeId: 'other', xdsAddress, listenAddress: '127.0.0.4', identity: 'e2e/other' }),
    ]);
    await waitFor('the mTLS tunnel to work', () => roundTrip(securePort).then(() => true), 30_000, 200);
  });

  afterAll(async () => {
    await Promise.all([originator?.stop(), intruder?.stop(), terminator?.stop()]);
    await shim?.stop();
    await Promise.all([secureBackend?.close(), permBackend?.close(), guardedBackend?.close()]);
  });

  it('carries bytes over mTLS; the terminator logs the peer SPIFFE ID and serial; both count handshakes', async () => {
    const received = await roundTrip(securePort, 'hello over mtls\n');
    expect(received).toBe('secure\nhello over mtls\n');
    const entry = await waitFor('terminator access log', () =>
      terminator.accessLog().find((e) => e.authority === authority('secure', securePort) && e.response_code === 200),
    );
    expect(entry.peer_identity).toBe(client.id);
    expect(String(entry.peer_serial).toLowerCase()).toBe(client.serial);
    expect(await statSum(originator, /^cluster\.originate\/e2e\/secure\/\d+\.ssl\.handshake$/)).toBeGreaterThan(0);
    expect(await statSum(terminator, /^listener\.127\.0\.0\.2_\d+\.ssl\.handshake$/)).toBeGreaterThan(0);
  });

  it('has seconds until expiry per identity in /metrics, and a warning for a certificate about to expire', async () => {
    const metrics = await (await fetch(`${shim.adminUrl}/metrics`)).text();
    const line = metrics.split('\n').find((l) => l.includes(`identity="${client.id}"`));
    expect(line).toMatch(/^tunnel_shim_certificate_expiry_seconds\{.*secret="e2e\/client-identity".*\} \d+$/);
    const seconds = Number(line!.split(' ').at(-1));
    // Issued for 2 h (plus the hour before now it starts at): within the 24 h warning.
    expect(seconds).toBeGreaterThan(3600);
    expect(seconds).toBeLessThanOrEqual(3 * 3600);
    const diagnostics = JSON.stringify(await (await fetch(`${shim.adminUrl}/debug/diagnostics`)).json());
    expect(diagnostics).toContain('CertificateExpiring');
  });

  it('answers 403 to an identity the Service does not allow, and the backend sees no connection', async () => {
    const before = secureBackend.connections;
    const app = await Client.connect(securePort, '127.0.0.4');
    app.socket.write('let me in\n');
    await waitFor('the intruder tunnel to close', () => app.closed, 10_000);
    const entry = await waitFor('a 403 in the terminator log', () =>
      terminator.accessLog().find((e) => e.response_code === 403 && e.peer_identity === other.id),
    );
    expect(entry.authority).toBe(authority('secure', securePort));
    expect(app.received).toBe('');
    expect(secureBackend.connections).toBe(before);
  });

  it('never lets a plaintext client reach a strict Service', async () => {
    const before = secureBackend.connections;
    expect(await plaintextConnect('127.0.0.2', tunnelPort, authority('secure', securePort))).toBe(404);
    expect(secureBackend.connections).toBe(before);
  });

  it('permissive accepts mTLS and plaintext on the same port', async () => {
    expect(await roundTrip(permPort, 'perm over mtls\n')).toBe('perm\nperm over mtls\n');
    const mtlsEntry = await waitFor('the mTLS entry', () =>
      terminator.accessLog().find((e) => e.authority === authority('perm', permPort) && e.peer_identity === client.id),
    );
    expect(mtlsEntry.response_code).toBe(200);
    const before = permBackend.connections;
    expect(await plaintextConnect('127.0.0.2', tunnelPort, authority('perm', permPort))).toBe(200);
    await waitFor('the plaintext tunnel to reach the backend', () => permBackend.connections > before);
  });

  it('allowed-identities on a permissive Service: a plaintext peer gets 403 and opens nothing', async () => {
    expect(await roundTrip(guardedPort, 'allowed\n')).toBe('guarded\nallowed\n');
    const before = guardedBackend.connections;
    expect(await plaintextConnect('127.0.0.2', tunnelPort, authority('guarded', guardedPort))).toBe(403);
    expect(guardedBackend.connections).toBe(before);
  });
});
