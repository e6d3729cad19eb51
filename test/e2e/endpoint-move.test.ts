// Make-before-break across Envoys (issue 13, item 3): three terminators bound to 127.0.0.2-4, one
// originator, a new app connection every 10 ms, and a Service's endpoint moved between terminators 10
// times, then grown 1 -> 3 and shrunk back. No connection may fail: an originator learns an endpoint
// only after its terminator ACKed the chain for it, and a terminator drops a chain only after the
// originator ACKed its withdrawal.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEnvoy, type EnvoyProcess } from '../helpers/envoy.js';
import { freePort, roundTrip, startEcho, type EchoServer } from '../helpers/net.js';
import { serviceYaml } from '../helpers/objects.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { sleep, waitFor } from '../helpers/wait.js';

const addresses = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];

describe.each(['sotw', 'delta'] as const)('an endpoint moving between terminators (%s xDS)', (mode) => {
  const delta = mode === 'delta';
  let shim: TestShim;
  let originator: EnvoyProcess;
  const terminators: EnvoyProcess[] = [];
  const backends: EchoServer[] = [];
  let tunnelPort: number;
  let servicePort: number;
  let backendPort: number;

  const service = (ips: string[]) =>
    serviceYaml({
      name: 'mover',
      namespace: 'e2e',
      clusterIP: '10.96.0.40',
      port: servicePort,
      annotations: { 'tunnel-shim.io/tunnel-port': String(tunnelPort) },
      endpoints: ips.map((ip) => ({ ip, port: backendPort })),
    });

  /** The terminator addresses the originator's cluster has now, from Envoy's own /clusters. */
  async function originatorHosts(): Promise<string[]> {
    const text = await originator.get('/clusters');
    const hosts = new Set<string>();
    for (const m of text.matchAll(/^originate\/e2e\/mover\/\d+::([\d.]+):(\d+)::cx_total::/gm))
      if (Number(m[2]) === tunnelPort) hosts.add(m[1]!);
    return [...hosts].sort();
  }

  async function holds(): Promise<number> {
    const nodes = (await (await fetch(`${shim.adminUrl}/debug/nodes`)).json()) as { holding?: unknown[] }[];
    return nodes.reduce((n, node) => n + (node.holding?.length ?? 0), 0);
  }

  /** Waits until the originator uses exactly `ips` and nothing is on hold, then lets traffic run a while. */
  async function settle(ips: string[]): Promise<void> {
    await waitFor(
      `the originator to use ${ips.join(', ')}`,
      async () => JSON.stringify(await originatorHosts()) === JSON.stringify(ips) && (await holds()) === 0,
      20_000,
      20,
    );
    await sleep(300);
  }

  beforeAll(async () => {
    tunnelPort = await freePort();
    servicePort = await freePort();
    backendPort = await freePort('127.0.0.2');
    for (const ip of addresses) backends.push(await startEcho(ip, backendPort, `backend-${ip}`));
    shim = await startShim({ 'mover.yaml': service([addresses[0]!]) });
    const started = await Promise.all([
      startEnvoy({
        role: 'originate',
        nodeId: 'originator',
        xdsAddress: shim.xdsAddress,
        listenAddress: '127.0.0.1',
        concurrency: 2,
        delta,
      }),
      ...addresses.map((ip) =>
        startEnvoy({
          role: 'terminate',
          nodeId: `terminator-${ip}`,
          xdsAddress: shim.xdsAddress,
          listenAddress: ip,
          delta,
        }),
      ),
    ]);
    originator = started[0]!;
    terminators.push(...started.slice(1));
    await waitFor(
      'the tunnel to work',
      () =>
        roundTrip(servicePort).then(
          () => true,
          () => false,
        ),
      20_000,
      100,
    );
  });

  afterAll(async () => {
    await Promise.all([originator?.stop(), ...terminators.map((t) => t.stop())]);
    await shim?.stop();
    await Promise.all(backends.map((b) => b.close()));
  });

  it('fails no connection opened every 10 ms through 10 moves, a grow 1 -> 3 and a shrink back', async () => {
    let opened = 0;
    const failures: string[] = [];
    const inFlight = new Set<Promise<void>>();
    let phase = 'start';
    const traffic = setInterval(() => {
      opened++;
      const at = phase;
      const p = roundTrip(servicePort).then(
        (got) => void (got.startsWith('backend-') || failures.push(`${at}: unexpected ${JSON.stringify(got)}`)),
        (err: Error) => void failures.push(`${at}: ${err.message}`),
      );
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    }, 10);
    try {
      await settle([addresses[0]!]);
      let at = 0;
      for (let move = 1; move <= 10; move++) {
        at = move % 2;
        phase = `move ${move} to ${addresses[at]}`;
        shim.write('mover.yaml', service([addresses[at]!]));
        await settle([addresses[at]!]);
      }
      phase = 'grow 1 -> 3';
      shim.write('mover.yaml', service(addresses));
      await settle(addresses);
      phase = 'shrink 3 -> 1';
      shim.write('mover.yaml', service([addresses[at]!]));
      await settle([addresses[at]!]);
    } finally {
      clearInterval(traffic);
      await Promise.all([...inFlight]);
    }
    const metrics = await (await fetch(`${shim.adminUrl}/metrics`)).text();
    const rollout = metrics
      .split('\n')
      .filter((l) => /^tunnel_shim_rollout_(timeouts_total|hold_seconds_(count|sum))/.test(l));
    console.log(`${mode}: ${opened} connections, ${failures.length} failed${failures.map((f) => `\n  ${f}`).join('')}`);
    console.log(rollout.join('\n'));
    expect(opened).toBeGreaterThan(300);
    expect(failures).toEqual([]);
    // Every hold ended because the Envoys ACKed, none at the bound.
    expect(metrics).toMatch(/^tunnel_shim_rollout_timeouts_total\{phase="announce"\} 0$/m);
    expect(metrics).toMatch(/^tunnel_shim_rollout_timeouts_total\{phase="withdraw"\} 0$/m);
  }, 180_000);
});
