// A NACK caused by something transient heals by itself: real originators (SotW and delta) reject a
// listener whose port the test holds; the shim retries with backoff (shown in status), and once the
// port is free the listener comes up and carries a tunnel, without any edit.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { startEnvoy, type EnvoyProcess } from '../helpers/envoy.js';
import { freePort, roundTrip, startEcho, type EchoServer } from '../helpers/net.js';
import { debugNodes } from '../helpers/nodes.js';
import { serviceYaml } from '../helpers/objects.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { waitFor } from '../helpers/wait.js';

let shim: TestShim;
let backend: EchoServer;
const envoys: EnvoyProcess[] = [];
const holders: net.Server[] = [];
let port: number;

const hold = (host: string) =>
  new Promise<net.Server>((resolve, reject) => {
    const server = net.createServer((s) => s.destroy());
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });

beforeAll(async () => {
  port = await freePort();
  const tunnelPort = await freePort();
  backend = await startEcho('127.0.0.2', 0);
  holders.push(await hold('127.0.0.1'), await hold('127.0.0.3'));
  shim = await startShim({
    'echo.yaml': serviceYaml({
      name: 'echo',
      namespace: 'retry',
      clusterIP: '10.96.7.1',
      port,
      annotations: { 'tunnel-shim.io/tunnel-port': String(tunnelPort) },
      endpoints: [{ ip: '127.0.0.2', port: backend.port }],
    }),
  });
  envoys.push(
    ...(await Promise.all([
      startEnvoy({ role: 'terminate', nodeId: 'retry-terminator', xdsAddress: shim.xdsAddress }),
      startEnvoy({ role: 'originate', nodeId: 'retry-sotw', xdsAddress: shim.xdsAddress, listenAddress: '127.0.0.1' }),
      startEnvoy({
        role: 'originate',
        nodeId: 'retry-delta',
        xdsAddress: shim.xdsAddress,
        listenAddress: '127.0.0.3',
        delta: true,
      }),
    ])),
  );
});

afterAll(async () => {
  for (const h of holders) h.close();
  await Promise.all(envoys.map((e) => e.stop()));
  await shim?.stop();
  await backend?.close();
});

const nacks = async () => {
  const text = await (await fetch(`${shim.adminUrl}/metrics`)).text();
  return Number(/^tunnel_shim_xds_nacks_total\{type="listener"\} (\S+)$/m.exec(text)?.[1] ?? 0);
};

describe('NACK retry', () => {
  it('a listener rejected while its port is taken comes up once the port is free, with no edit', async () => {
    const listenerOf = async (id: string) => (await debugNodes(shim.adminUrl)).find((n) => n.id === id)?.types.listener;
    for (const id of ['retry-sotw', 'retry-delta']) {
      const t = await waitFor(
        `${id} to NACK the listener`,
        async () => {
          const l = await listenerOf(id);
          return l?.status === 'NACKED' && l.retryInSeconds !== null ? l : undefined;
        },
        30_000,
        100,
      );
      expect(t.lastNack!.message).toContain('Address already in use');
    }
    const table = await runCli(['status', '--admin-address', shim.adminUrl.replace('http://', '')]);
    expect(table.stdout.split('\n').find((l) => l.startsWith('retry-sotw'))).toMatch(
      /NACKED \([0-9a-f]{8}, retry in [0-9]s\)/,
    );
    // The delta originator the same way, said to speak delta (a retry may be in flight: STALE, NACK still shown).
    const deltaRow = table.stdout.split('\n').find((l) => l.startsWith('retry-delta'));
    expect(deltaRow).toMatch(/^retry-delta\s+originate\s+delta\s+/);
    expect(deltaRow).toMatch(
      /(NACKED \([0-9a-f]{8}, retry in [0-9]s\)|STALE \([0-9a-f]{8}\)).*listener: .*Address already in use/,
    );
    // Backoff: sent again after ~1 s and NACKed again, then after ~2 s, ~4 s...: never a tight loop.
    const again = await waitFor(
      'a retry NACKed again',
      async () => {
        const l = await listenerOf('retry-sotw');
        return l && l.nacks >= 2 && l.retryAt ? l : undefined;
      },
      15_000,
      100,
    );
    const delay = Date.parse(again.retryAt) - Date.parse(again.lastNack!.at);
    const expected = 1000 * 2 ** (again.nacks - 1);
    console.log(
      `the SotW originator NACKed its listener ${again.nacks} times in a row ` +
        `(${await nacks()} listener NACKs counted from both originators); ` +
        `next retry ${delay} ms after the last (nominal ${expected} ms)`,
    );
    expect(delay).toBeGreaterThanOrEqual(expected * 0.8 - 5);
    expect(delay).toBeLessThanOrEqual(expected * 1.2 + 5);
    for (const h of holders) await new Promise((r) => h.close(r));
    const freedAt = performance.now();
    await waitFor(
      'the SotW originator to tunnel through the freed port',
      () =>
        roundTrip(port, 'sotw\n', '127.0.0.1').then(
          () => true,
          () => false,
        ),
      20_000,
      200,
    );
    await waitFor(
      'the delta originator to tunnel through the freed port',
      () =>
        roundTrip(port, 'delta\n', '127.0.0.3').then(
          () => true,
          () => false,
        ),
      20_000,
      200,
    );
    console.log(`listeners up ${((performance.now() - freedAt) / 1000).toFixed(1)} s after the port was freed`);
    await waitFor(
      'both SYNCED',
      async () =>
        (await listenerOf('retry-sotw'))?.status === 'SYNCED' && (await listenerOf('retry-delta'))?.status === 'SYNCED',
      10_000,
      100,
    );
    expect((await listenerOf('retry-sotw'))!.retryInSeconds).toBeNull();
  });
});
