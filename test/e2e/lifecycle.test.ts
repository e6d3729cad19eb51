// Lifecycle of a real `tunnel-shim serve` process with two real Envoys: SIGTERM ends it within a
// bounded time while tunnels keep working, Envoys reconnect to the next shim on the same port, and a
// maximum connection age makes Envoys reconnect on their own (so they spread over replicas).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveArgs, spawnCli } from '../helpers/cli.js';
import { startEnvoy, type EnvoyProcess } from '../helpers/envoy.js';
import { freePort, roundTrip, startEcho, type EchoServer } from '../helpers/net.js';
import { serviceYaml } from '../helpers/objects.js';
import { startShim } from '../helpers/shim.js';
import { waitFor } from '../helpers/wait.js';
import { debugNodes } from '../helpers/nodes.js';
import { xdsModes } from '../helpers/xds-client.js';

let dir: string;
let xdsPort: number;
let adminPort: number;
let echoPort: number;
let backend: EchoServer;
let originator: EnvoyProcess;
let terminator: EnvoyProcess;
const shims: ReturnType<typeof spawnCli>[] = [];

function serve() {
  const child = spawnCli(serveArgs(dir, xdsPort, adminPort));
  shims.push(child);
  return child;
}

async function syncedNodes(): Promise<string[]> {
  const nodes = (await (
    await fetch(`http://127.0.0.1:${adminPort}/debug/nodes`, { signal: AbortSignal.timeout(2000) })
  ).json()) as { id: string; types: Record<string, { status: string }> }[];
  return nodes
    .filter((n) => Object.keys(n.types).length >= 2 && Object.values(n.types).every((t) => t.status === 'SYNCED'))
    .map((n) => n.id)
    .sort();
}

const exited = (child: ReturnType<typeof spawnCli>) =>
  new Promise<number | null>((resolve) =>
    child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code)),
  );

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifecycle-'));
  [xdsPort, adminPort, echoPort] = [await freePort(), await freePort(), await freePort()];
  const tunnelPort = await freePort();
  backend = await startEcho('127.0.0.2', 0);
  fs.writeFileSync(
    path.join(dir, 'echo.yaml'),
    serviceYaml({
      name: 'echo',
      namespace: 'life',
      clusterIP: '10.96.8.1',
      port: echoPort,
      annotations: { 'tunnel-shim.io/tunnel-port': String(tunnelPort) },
      endpoints: [{ ip: '127.0.0.2', port: backend.port }],
    }),
  );
});

afterAll(async () => {
  for (const s of shims) if (s.exitCode === null) s.kill('SIGKILL');
  await Promise.all([originator?.stop(), terminator?.stop()]);
  await backend?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('SIGTERM with two Envoys connected', () => {
  it('exits within 5 s; both Envoys keep tunneling and resync with the next shim on the same port', async () => {
    const first = serve();
    await waitFor(
      'the shim to be ready',
      async () => {
        if (first.exitCode !== null) throw new Error(`serve exited: ${first.output()}`);
        return (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).ok;
      },
      20_000,
      100,
    );
    [terminator, originator] = await Promise.all([
      startEnvoy({ role: 'terminate', nodeId: 'life-terminator', xdsAddress: `127.0.0.1:${xdsPort}` }),
      startEnvoy({
        role: 'originate',
        nodeId: 'life-originator',
        xdsAddress: `127.0.0.1:${xdsPort}`,
        listenAddress: '127.0.0.1',
      }),
    ]);
    await waitFor('both Envoys SYNCED', async () => (await syncedNodes()).length === 2, 30_000, 100);
    await waitFor('the tunnel to work', () => roundTrip(echoPort).then(() => true), 20_000, 200);

    const started = Date.now();
    first.kill('SIGTERM');
    const code = await exited(first);
    const took = Date.now() - started;
    expect(code).toBe(0);
    expect(took).toBeLessThan(5000);
    expect(first.output()).toContain('"msg":"shutting down"');
    // The Envoys saw the stream end (UNAVAILABLE) and are without a control plane, yet still tunnel.
    await waitFor(
      'Envoys to notice',
      async () =>
        (await originator.stat('control_plane.connected_state')) === 0 &&
        (await terminator.stat('control_plane.connected_state')) === 0,
      10_000,
      100,
    );
    for (let i = 0; i < 5; i++) expect(await roundTrip(echoPort)).toContain('ping-');

    const second = serve();
    const back = await waitFor(
      'both Envoys SYNCED with the new shim',
      async () => {
        if (second.exitCode !== null) throw new Error(`serve exited: ${second.output()}`);
        const ids = await syncedNodes();
        return ids.length === 2 ? ids : undefined;
      },
      40_000,
      200,
    );
    expect(back).toEqual(['life-originator', 'life-terminator']);
    expect(await originator.stat('control_plane.connected_state')).toBe(1);
    expect(await roundTrip(echoPort)).toContain('ping-');
    console.log(`SIGTERM to exit: ${took} ms`);
    second.kill('SIGTERM');
    expect(await exited(second)).toBe(0);
  });
});

describe.each(xdsModes)('maximum connection age (%s Envoy)', (mode) => {
  it('makes a connected Envoy reconnect on its own after the age, staying SYNCED', async () => {
    const shim = await startShim(
      { 'echo.yaml': fs.readFileSync(path.join(dir, 'echo.yaml'), 'utf8') },
      { maxConnectionAgeMs: 1000, maxConnectionAgeGraceMs: 500 },
    );
    const envoy = await startEnvoy({
      role: 'originate',
      nodeId: 'aging',
      xdsAddress: shim.xdsAddress,
      listenAddress: '127.0.0.2',
      delta: mode === 'delta',
    });
    try {
      const opened = async () => {
        const text = await (await fetch(`${shim.adminUrl}/metrics`)).text();
        return Number(/^tunnel_shim_xds_streams_opened_total\{role="originate"\} (\d+)$/m.exec(text)?.[1] ?? 0);
      };
      await waitFor('three streams from one Envoy', async () => (await opened()) >= 3, 15_000, 100);
      expect(await envoy.stat('cluster.tunnel-shim-xds.upstream_cx_total')).toBeGreaterThanOrEqual(3);
      const nodes = await waitFor('SYNCED again', async () => {
        const list = await debugNodes(shim.adminUrl);
        const node = list.find((n) => n.id === 'aging');
        return node && Object.values(node.types).every((t) => t.status === 'SYNCED') ? list : undefined;
      });
      expect(nodes.filter((n) => n.id === 'aging').map((n) => n.protocol)).toEqual([mode]);
    } finally {
      await envoy.stop();
      await shim.stop();
    }
  });
});
