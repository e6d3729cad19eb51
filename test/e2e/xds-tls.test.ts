// xDS over mutual TLS with real Envoys: `tunnel-shim serve --xds-tls-cert/--xds-tls-key/--xds-client-ca` and
// Envoys bootstrapped by `tunnel-shim bootstrap --xds-tls DIR` get their configuration over TLS (Envoy's own
// handshake stats show it) and tunnel bytes; an Envoy with a certificate for another identity than its node,
// or from another CA, gets nothing.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCa } from '../../src/cli/dev-ca.js';
import { bootstrapTlsFrom } from '../../src/cli/xds-tls-options.js';
import { runCli, serveArgs, spawnCli } from '../helpers/cli.js';
import { startEnvoy, type EnvoyProcess } from '../helpers/envoy.js';
import { freePort, roundTrip, startEcho, type EchoServer } from '../helpers/net.js';
import { serviceYaml } from '../helpers/objects.js';
import { waitFor } from '../helpers/wait.js';
import { shimIdentity, tlsFixture, type TlsFixture } from '../helpers/xds-tls.js';

let tls: TlsFixture;
let dir: string;
let xdsPort: number;
let adminPort: number;
let echoPort: number;
let backend: EchoServer;
let shim: ReturnType<typeof spawnCli>;
const envoys: EnvoyProcess[] = [];

const xdsCluster = 'tunnel-shim-xds';

beforeAll(async () => {
  tls = await tlsFixture();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xds-tls-e2e-'));
  [xdsPort, adminPort, echoPort] = [await freePort(), await freePort(), await freePort()];
  const tunnelPort = await freePort();
  backend = await startEcho('127.0.0.2', 0);
  fs.writeFileSync(
    path.join(dir, 'echo.yaml'),
    serviceYaml({
      name: 'echo',
      namespace: 'shop',
      clusterIP: '10.96.8.1',
      port: echoPort,
      annotations: { 'tunnel-shim.io/tunnel-port': String(tunnelPort) },
      endpoints: [{ ip: '127.0.0.2', port: backend.port }],
    }),
  );
  const tlsFlags = ['--xds-tls-cert', tls.certFile, '--xds-tls-key', tls.keyFile, '--xds-client-ca', tls.caFile];
  shim = spawnCli([...serveArgs(dir, xdsPort, adminPort), ...tlsFlags]);
  await waitFor(
    'the shim to be ready',
    async () => {
      if (shim.exitCode !== null) throw new Error(`serve exited: ${shim.output()}`);
      return (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).ok;
    },
    20_000,
    100,
  );
});

afterAll(async () => {
  if (shim && shim.exitCode === null) shim.kill('SIGKILL');
  await Promise.all(envoys.map((e) => e.stop()));
  await backend?.close();
  fs.rmSync(dir, { recursive: true, force: true });
  tls?.remove();
});

/** An Envoy bootstrapped as `bootstrap --xds-tls CERTS_DIR` would write it. */
async function envoy(
  nodeId: string,
  role: 'originate' | 'terminate',
  certs: string,
  delta = false,
): Promise<EnvoyProcess> {
  const e = await startEnvoy({
    role,
    nodeId,
    delta,
    xdsAddress: `127.0.0.1:${xdsPort}`,
    listenAddress: role === 'originate' ? '127.0.0.1' : undefined,
    xdsTls: bootstrapTlsFrom({ xdsTls: certs, xdsServerIdentity: shimIdentity }),
  });
  envoys.push(e);
  return e;
}

async function connectedNodes(): Promise<string[]> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/debug/nodes`, { signal: AbortSignal.timeout(2000) });
  return ((await res.json()) as { id: string }[]).map((n) => n.id).sort();
}

describe('xDS over mutual TLS with real Envoys', () => {
  it('bootstrap --xds-tls writes the TLS xDS cluster the Envoys below run with', async () => {
    const certs = path.join(tls.dir, 'shop-web');
    const out = await runCli([
      'bootstrap',
      '--role',
      'originate',
      '--node-id',
      'web-0.shop',
      '--xds-address',
      `127.0.0.1:${xdsPort}`,
      '--xds-tls',
      certs,
      '--xds-server-identity',
      shimIdentity,
      '--output',
      'json',
    ]);
    expect(out.stderr).toBe('');
    const cluster = JSON.parse(out.stdout).static_resources.clusters[0];
    expect(cluster.transport_socket).toEqual({
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
        common_tls_context: {
          alpn_protocols: ['h2'],
          tls_certificates: [
            {
              certificate_chain: { filename: path.join(certs, 'tls.crt') },
              private_key: { filename: path.join(certs, 'tls.key') },
            },
          ],
          validation_context: {
            trusted_ca: { filename: path.join(certs, 'ca.crt') },
            match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: shimIdentity } }],
          },
        },
      },
    });
  });

  it('Envoys of their own identity get config over TLS, tunnel, and keep it across a shim rotation', async () => {
    const web = await tls.issue('shop/web');
    const db = await tls.issue('shop/db');
    const [originator, terminator] = await Promise.all([
      envoy('web-0.shop/originate', 'originate', web.dir, true),
      envoy('db-0.shop/terminate', 'terminate', db.dir),
    ]);
    await waitFor('the tunnel to work', () => roundTrip(echoPort).then(() => true), 30_000, 200);
    expect(await roundTrip(echoPort, 'hello over mTLS xDS\n')).toBe('hello over mTLS xDS\n');
    for (const e of [originator, terminator]) {
      const stats = await e.stats();
      expect(stats.get(`cluster.${xdsCluster}.ssl.handshake`), e.name).toBeGreaterThanOrEqual(1);
      expect(stats.get('control_plane.connected_state'), e.name).toBe(1);
      console.log(`${e.name}: cluster.${xdsCluster}.ssl.handshake ${stats.get(`cluster.${xdsCluster}.ssl.handshake`)}`);
    }
    expect(await connectedNodes()).toEqual(['db-0.shop/terminate', 'web-0.shop/originate']);

    // The shim's certificate rotates on disk: the Envoys keep their TLS connection (no new handshake)
    // and still receive changes over it.
    const next = await tls.issueShim();
    tls.replace(tls.keyFile, next.keyPem);
    tls.replace(tls.certFile, next.certPem);
    await waitFor('the shim to load it', () => shim.output().includes('xDS TLS certificate reloaded'), 10_000, 100);
    const otherPort = await freePort();
    const tunnelPort = await freePort();
    fs.writeFileSync(
      path.join(dir, 'other.yaml'),
      serviceYaml({
        name: 'other',
        namespace: 'shop',
        clusterIP: '10.96.8.2',
        port: otherPort,
        annotations: { 'tunnel-shim.io/tunnel-port': String(tunnelPort) },
        endpoints: [{ ip: '127.0.0.2', port: backend.port }],
      }),
    );
    await waitFor('the new Service to tunnel', () => roundTrip(otherPort).then(() => true), 30_000, 200);
    for (const e of [originator, terminator]) {
      expect(await e.stat(`cluster.${xdsCluster}.ssl.handshake`), e.name).toBe(1);
      expect(await e.stat(`cluster.${xdsCluster}.upstream_cx_total`), e.name).toBe(1);
    }
  });

  it('an Envoy whose certificate is for another identity than its node is refused with PERMISSION_DENIED', async () => {
    const web = await tls.issue('shop/web', tls.ca, 'shop-web-2');
    const impostor = await envoy('db-1.payments/terminate', 'terminate', web.dir);
    const log = path.join(impostor.dir, 'envoy.log');
    // Envoy logs the status of the closed stream: 7 is PERMISSION_DENIED.
    const line = await waitFor(
      'the Envoy to log the refusal',
      // The message is logged as sent (grpc-message percent-encodes it).
      () => fs.readFileSync(log, 'utf8').match(/gRPC config stream to tunnel-shim-xds closed.*/)?.[0],
      20_000,
      100,
    );
    expect(decodeURIComponent(line)).toContain(
      '7, node "db-1.payments/terminate": a node of spiffe://cluster.local/ns/shop/sa/web must be named NAME.shop',
    );
    expect(await impostor.stat(`cluster.${xdsCluster}.ssl.handshake`)).toBeGreaterThanOrEqual(1);
    expect(await impostor.stat('listener_manager.lds.update_success')).toBe(0);
    expect(await impostor.stat('cluster_manager.cds.update_success')).toBe(0);
    expect(await connectedNodes()).not.toContain('db-1.payments/terminate');
  });

  it('an Envoy with a certificate from another CA gets no TLS connection', async () => {
    const other = await createCa('cluster.local', { name: 'another CA' });
    const stranger = await tls.issue('shop/web', other, 'other-ca');
    // It trusts the real CA, so only the shim's check of its certificate can refuse it.
    fs.writeFileSync(path.join(stranger.dir, 'ca.crt'), tls.ca.certPem);
    const e = await envoy('web-9.shop/originate', 'originate', stranger.dir);
    // The shim refuses its certificate in the handshake: the connection fails and no handshake completes.
    await waitFor(
      'a failed connection',
      async () => (await e.stat(`cluster.${xdsCluster}.upstream_cx_connect_fail`)) > 0,
      20_000,
      100,
    );
    expect(await e.stat(`cluster.${xdsCluster}.ssl.handshake`)).toBe(0);
    expect(await e.stat('cluster_manager.cds.update_success')).toBe(0);
    expect(await connectedNodes()).not.toContain('web-9.shop/originate');
  });
});
