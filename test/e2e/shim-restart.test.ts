// The shim killed with SIGKILL and started again while 20 tunnels stream (issue 13, item 6): no tunnel
// drops, and once the Envoys resync with the fresh shim none of them modifies or drains anything. A
// fresh shim knows nothing of what the Envoys hold; make-before-break must not make it withhold (and so
// change) endpoints they already have.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveArgs, spawnCli } from '../helpers/cli.js';
import { startEnvoy, type EnvoyProcess } from '../helpers/envoy.js';
import { Client, freePort, roundTrip, startEcho, type EchoServer } from '../helpers/net.js';
import { debugNodes } from '../helpers/nodes.js';
import { serviceYaml } from '../helpers/objects.js';
import { sleep, waitFor } from '../helpers/wait.js';

/** Envoy stats that move when a listener, filter chain or cluster is changed or drained. */
const churn = [
  'listener_manager.listener_modified',
  'listener_manager.total_filter_chains_draining',
  'cluster_manager.cluster_modified',
  'listener_manager.listener_removed',
  'cluster_manager.cluster_removed',
];

describe.each(['sotw', 'delta'] as const)(
  'the shim killed and restarted under 20 streaming tunnels (%s xDS)',
  (mode) => {
    let dir: string;
    let xdsPort: number;
    let adminPort: number;
    const ports: number[] = [];
    const backends: EchoServer[] = [];
    const envoys: EnvoyProcess[] = [];
    const shims: ReturnType<typeof spawnCli>[] = [];

    const serve = async () => {
      const child = spawnCli(serveArgs(dir, xdsPort, adminPort));
      shims.push(child);
      await waitFor(
        'the shim to be ready',
        async () => {
          if (child.exitCode !== null || child.signalCode !== null) throw new Error(`serve exited: ${child.output()}`);
          return (await fetch(`http://127.0.0.1:${adminPort}/readyz`).catch(() => undefined))?.ok;
        },
        20_000,
        100,
      );
      return child;
    };

    const allSynced = async () => {
      const nodes = await debugNodes(`http://127.0.0.1:${adminPort}`).catch(() => []);
      return (
        nodes.length === envoys.length &&
        nodes.every(
          (n) => Object.keys(n.types).length >= 2 && Object.values(n.types).every((t) => t.status === 'SYNCED'),
        )
      );
    };

    /** The churn stats of every Envoy, plus endpoint membership changes summed over its clusters. */
    const churnStats = async () => {
      const out: Record<string, number> = {};
      for (const e of envoys) {
        const stats = await e.stats();
        for (const s of churn) out[`${e.name} ${s}`] = stats.get(s) ?? 0;
        out[`${e.name} cluster.*.membership_change`] = [...stats]
          .filter(([k]) => k.endsWith('.membership_change'))
          .reduce((n, [, v]) => n + v, 0);
      }
      return out;
    };

    beforeAll(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shim-restart-'));
      [xdsPort, adminPort] = [await freePort(), await freePort()];
      const tunnelPort = await freePort();
      const backendPort = await freePort('127.0.0.2');
      // Two Services on two terminators bound to their own addresses, 10 tunnels each.
      for (const [i, ip] of ['127.0.0.2', '127.0.0.3'].entries()) {
        backends.push(await startEcho(ip, backendPort));
        ports.push(await freePort());
        fs.writeFileSync(
          path.join(dir, `s${i}.yaml`),
          serviceYaml({
            name: `s${i}`,
            namespace: 'restart',
            clusterIP: `10.96.9.${i + 1}`,
            port: ports[i]!,
            annotations: { 'tunnel-shim.io/tunnel-port': String(tunnelPort) },
            endpoints: [{ ip, port: backendPort }],
          }),
        );
      }
      await serve();
      const delta = mode === 'delta';
      envoys.push(
        ...(await Promise.all([
          startEnvoy({
            role: 'originate',
            nodeId: 'restart-originator',
            xdsAddress: `127.0.0.1:${xdsPort}`,
            listenAddress: '127.0.0.1',
            concurrency: 2,
            delta,
          }),
          startEnvoy({
            role: 'terminate',
            nodeId: 'restart-terminator-2',
            xdsAddress: `127.0.0.1:${xdsPort}`,
            listenAddress: '127.0.0.2',
            delta,
          }),
          startEnvoy({
            role: 'terminate',
            nodeId: 'restart-terminator-3',
            xdsAddress: `127.0.0.1:${xdsPort}`,
            listenAddress: '127.0.0.3',
            delta,
          }),
        ])),
      );
      await waitFor('every Envoy SYNCED', allSynced, 30_000, 100);
      for (const port of ports)
        await waitFor(
          'the tunnel to work',
          () =>
            roundTrip(port).then(
              () => true,
              () => false,
            ),
          20_000,
          100,
        );
    });

    afterAll(async () => {
      for (const s of shims) if (s.exitCode === null && s.signalCode === null) s.kill('SIGKILL');
      await Promise.all(envoys.map((e) => e.stop()));
      await Promise.all(backends.map((b) => b.close()));
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('drops no tunnel, and no Envoy modifies or drains anything after the restart', async () => {
      const tunnels = await Promise.all(Array.from({ length: 20 }, (_, i) => Client.connect(ports[i % 2]!)));
      const errors: string[] = [];
      let rounds = 0;
      let streaming = true;
      // Every tunnel echoes a line every 50 ms for the whole test.
      const stream = (async () => {
        while (streaming) {
          await Promise.all(
            tunnels.map((t, i) =>
              t
                .echo(`tunnel ${i} round ${rounds}\n`)
                .catch((err: Error) => void errors.push(`tunnel ${i}: ${err.message}`)),
            ),
          );
          rounds++;
          await sleep(50);
        }
      })();
      try {
        await sleep(500);
        const before = await churnStats();
        const first = shims.at(-1)!;
        first.kill('SIGKILL');
        await waitFor(
          'the Envoys to lose the shim',
          async () =>
            (await Promise.all(envoys.map((e) => e.stat('control_plane.connected_state')))).every((s) => s === 0),
          10_000,
          50,
        );
        await sleep(500);
        await serve();
        await waitFor('every Envoy SYNCED with the new shim', allSynced, 40_000, 100);
        // Time for anything the resync changed to show in the stats.
        await sleep(1500);
        const roundsBefore = rounds;
        await waitFor('more rounds after the restart', () => rounds >= roundsBefore + 5, 10_000);
        expect(await churnStats()).toEqual(before);
        expect(errors).toEqual([]);
        expect(tunnels.filter((t) => t.closed)).toEqual([]);
        console.log(`${mode}: 20 tunnels, ${rounds} echo rounds each across a SIGKILL and restart, 0 errors`);
        console.log(`churn stats unchanged: ${JSON.stringify(before)}`);
      } finally {
        streaming = false;
        await stream;
        for (const t of tunnels) t.close();
      }
    }, 120_000);
  },
);
