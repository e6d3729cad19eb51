// A terminator that vanishes without a FIN (its host blackholed), then comes back on the same
// address: open tunnels must close within the keepalive bound instead of hanging, new connections
// must fail within the bound plus the originator's connect timeout (2 s) instead of hanging, and
// after the restart tunnels work again. Once with the default keepalive (5 s / 4 s: at most
// 5 x 1.15 + 4 = 9.75 s) and once with 1 s / 1 s annotations (at most 2.15 s), side by side.
// The terminator runs in a network namespace this test creates; the blackhole is its link going down.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startEnvoy, type EnvoyProcess } from '../helpers/envoy.js';
import { Client, freePort, roundTrip } from '../helpers/net.js';
import { createNetns, type Netns } from '../helpers/netns.js';
import { debugNodes } from '../helpers/nodes.js';
import { serviceYaml } from '../helpers/objects.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { sleep, waitFor } from '../helpers/wait.js';

let netns: Netns;
let shim: TestShim;
let originator: EnvoyProcess;
let terminator: EnvoyProcess;
const echoPort = 9000;
let tunnelPort: number;
const port: Record<string, number> = {};
/** Detection bound per Service: interval x 1.15 + timeout, in ms. */
const bound = { standard: 5 * 1150 + 4000, fast: 1150 + 1000 };
/** Room for a busy machine (two shared cores) above each bound. */
const slack = 2500;
const connectTimeout = 2000;

const startTerminator = () =>
  startEnvoy({
    role: 'terminate',
    nodeId: 'bh-terminator',
    xdsAddress: shim.xdsAddress,
    listenAddress: netns.addresses[0]!,
    netns: { exec: netns.exec, adminHost: netns.addresses[0]! },
  });

async function synced(): Promise<boolean> {
  const nodes = await debugNodes(shim.adminUrl);
  return ['bh-originator', 'bh-terminator'].every((id) => {
    const n = nodes.find((x) => x.id === id);
    return n !== undefined && Object.values(n.types).every((t) => t.status === 'SYNCED' || t.status === 'NOT_SENT');
  });
}

beforeAll(async () => {
  netns = createNetns(1);
  await netns.startEcho([{ address: netns.addresses[0]!, port: echoPort, name: 'backend' }]);
  tunnelPort = await freePort();
  for (const name of ['standard', 'fast']) port[name] = await freePort();
  const fast = {
    'tunnel-shim.io/connection-keepalive-interval': '1s',
    'tunnel-shim.io/connection-keepalive-timeout': '1s',
  };
  const svc = (name: string, ip: string, annotations: Record<string, string> = {}) =>
    serviceYaml({
      name,
      namespace: 'e2e',
      clusterIP: ip,
      port: port[name]!,
      annotations: { 'tunnel-shim.io/tunnel-port': String(tunnelPort), ...annotations },
      endpoints: [{ ip: netns.addresses[0]!, port: echoPort }],
    });
  const files = { 'standard.yaml': svc('standard', '10.96.4.1'), 'fast.yaml': svc('fast', '10.96.4.2', fast) };
  shim = await startShim(files, { xdsHost: netns.hostAddress });
  [terminator, originator] = await Promise.all([
    startTerminator(),
    startEnvoy({ role: 'originate', nodeId: 'bh-originator', xdsAddress: shim.xdsAddress, listenAddress: '127.0.0.1' }),
  ]);
  const both = () =>
    Promise.all([roundTrip(port.standard!), roundTrip(port.fast!)]).then(
      () => true,
      () => false,
    );
  await waitFor('both tunnels', both, 20_000, 200);
}, 60_000);

afterAll(async () => {
  await Promise.all([originator?.stop(), terminator?.stop()]);
  await shim?.stop();
  netns?.destroy();
});

/** When and how a connection ended, or `at` undefined while it is open. */
interface Ending {
  /** ms after `since` */
  at?: number;
  echoed: boolean;
  /** FIN, or the error code (ECONNRESET) */
  how?: string;
}

function watchClose(client: Client, since: number): Ending {
  const state: Ending = { echoed: false };
  client.socket.on('end', () => (state.how ??= 'FIN'));
  client.socket.on('error', (e: NodeJS.ErrnoException) => (state.how ??= e.code));
  client.socket.on('close', () => (state.at = Date.now() - since));
  return state;
}

it(
  'a blackholed terminator: open tunnels close and new connections fail within the keepalive bound, ' +
    'default and 1 s; after a restart on the same address tunnels work',
  async () => {
    const link = (state: 'up' | 'down') =>
      execFileSync('ip', ['netns', 'exec', netns.name, 'ip', 'link', 'set', netns.links.peer, state]);
    const open: Record<string, Client[]> = {};
    for (const name of ['standard', 'fast']) {
      open[name] = await Promise.all(Array.from({ length: 5 }, () => Client.connect(port[name]!)));
      for (const [i, c] of open[name]!.entries()) await c.echo(`${name} ${i} before\n`);
    }
    const figures: string[] = [];
    const blackholed = Date.now();
    link('down');
    try {
      const closes = Object.fromEntries(
        Object.entries(open).map(([name, clients]) => [name, clients.map((c) => watchClose(c, blackholed))]),
      );
      // Open tunnels keep writing into the void; new connections keep coming, every 500 ms.
      const fresh: Record<string, { opened: number; state: Ending }[]> = { standard: [], fast: [] };
      const until = blackholed + bound.standard + connectTimeout + slack;
      while (Date.now() < until) {
        for (const name of ['standard', 'fast']) {
          for (const c of open[name]!) if (!c.closed) c.socket.write('into the void\n');
          const client = await Client.connect(port[name]!).catch(() => undefined);
          if (!client) continue;
          const opened = Date.now();
          const state = watchClose(client, opened);
          client.socket.on('data', () => (state.echoed = true));
          client.socket.write('hello?\n');
          fresh[name]!.push({ opened: opened - blackholed, state });
        }
        await sleep(500);
      }
      await sleep(connectTimeout + slack);
      for (const name of ['standard', 'fast'] as const) {
        const closedAt = closes[name]!.map((s) => s.at);
        const how = closes[name]!.map((c) => c.how).join(', ');
        figures.push(`${name}: open tunnels closed (${how}) after ${closedAt.join(', ')} ms (bound ${bound[name]} ms)`);
        for (const at of closedAt) {
          expect(at, figures.at(-1)).toBeDefined();
          expect(at!, figures.at(-1)).toBeLessThanOrEqual(bound[name] + slack);
        }
        const lasted = fresh[name]!.map((f) => f.state.at);
        const hows = [...new Set(fresh[name]!.map((f) => f.state.how))].join(', ');
        figures.push(`${name}: ${lasted.length} new connections ended (${hows}) after ${lasted.join(', ')} ms`);
        for (const f of fresh[name]!) {
          expect(f.state.echoed, `${name}: a connection opened ${f.opened} ms into the blackhole got bytes`).toBe(
            false,
          );
          // Before the dead connection is noticed a new tunnel waits on it; after, it waits at most the connect
          // timeout.
          const limit = Math.max(bound[name] - f.opened, 0) + connectTimeout + slack;
          expect(f.state.at, `${name}: connection opened ${f.opened} ms in`).toBeDefined();
          expect(f.state.at!, `${name}: connection opened ${f.opened} ms in`).toBeLessThanOrEqual(limit);
        }
      }
      for (const name of ['standard', 'fast']) {
        const timeouts = await originator.stat(`cluster.originate/e2e/${name}/${port[name]}.http2.keepalive_timeout`);
        expect(timeouts).toBeGreaterThanOrEqual(1);
      }
    } finally {
      // The terminator "restarts" on the same address: the old process is gone, a new one starts.
      terminator.process.kill('SIGKILL');
      link('up');
      console.log(figures.join('\n'));
    }
    const restarted = Date.now();
    terminator = await startTerminator();
    await waitFor('the restarted terminator to be SYNCED', synced, 20_000, 100);
    for (const name of ['standard', 'fast']) {
      await waitFor(
        `${name} to work again`,
        () =>
          roundTrip(port[name]!).then(
            () => true,
            () => false,
          ),
        10_000,
        100,
      );
    }
    console.log(`tunnels work again ${Date.now() - restarted} ms after the restart`);
  },
  90_000,
);
