// An unrelated Service never cuts a tunnel: 20 tunnels stream through one pooled HTTP/2 connection
// while other Services, plain and with every annotation, on the same tunnel port and even the same
// endpoint IP, come and go. Envoys run with --drain-time-s 1 (test/helpers/envoy.ts), so a chain
// drained by mistake would close its tunnels within the test. The terminator drains no filter chain
// at all (listener_manager.total_filter_chains_draining stays 0), and a listener only when the
// Service that changed had an endpoint IP of its own and goes (translate/terminate.ts says why).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startEnvoy, type EnvoyProcess } from '../helpers/envoy.js';
import { Client, freePort, roundTrip, startEcho, type EchoServer } from '../helpers/net.js';
import { debugNodes } from '../helpers/nodes.js';
import { serviceYaml } from '../helpers/objects.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { sleep, waitFor } from '../helpers/wait.js';

let shim: TestShim;
let originator: EnvoyProcess;
let terminator: EnvoyProcess;
const backends: EchoServer[] = [];
let tunnelPort: number;
let steadyPort: number;
let backendPort: number;
let logDir: string;

/** Every per-Service annotation (README "Annotation reference"), on the shared tunnel port. */
async function everyAnnotation(name: string, placement: 'sidecar' | 'gateway'): Promise<Record<string, string>> {
  return {
    'tunnel-shim.io/tunnel-port': String(tunnelPort),
    'tunnel-shim.io/placement': placement,
    'tunnel-shim.io/hostname': `${name}.example:443`,
    'tunnel-shim.io/domains': `${name}.example:443`,
    'tunnel-shim.io/headers-to-add': '{x-tenant: blue}',
    'tunnel-shim.io/propagate-response-headers': 'true',
    'tunnel-shim.io/propagate-response-trailers': 'true',
    'tunnel-shim.io/idle-timeout': '5m',
    'tunnel-shim.io/max-downstream-connection-duration': '1h',
    'tunnel-shim.io/max-connect-attempts': '2',
    'tunnel-shim.io/access-log': path.join(logDir, `${name}.log`),
    'tunnel-shim.io/access-log-format': '%CONNECTION_ID% %REQ(:AUTHORITY)%',
    'tunnel-shim.io/hash-policy': 'source-ip',
    'tunnel-shim.io/lb-policy': 'MAGLEV',
    'tunnel-shim.io/metadata-match': '{env: blue}',
    'tunnel-shim.io/default-subset': '{env: blue}',
    'tunnel-shim.io/fallback-policy': 'ANY_ENDPOINT',
    'tunnel-shim.io/max-concurrent-streams': '100',
    'tunnel-shim.io/connection-keepalive-interval': '1s',
    'tunnel-shim.io/connection-keepalive-timeout': '1s',
    'tunnel-shim.io/initial-stream-window-size': '131072',
    'tunnel-shim.io/initial-connection-window-size': '2097152',
    'tunnel-shim.io/per-connection-buffer-limit-bytes': '65536',
    'tunnel-shim.io/relay-port': String(await freePort()),
  };
}

/** A tunnel that writes a line every 50 ms and checks every byte comes back, until stopped. */
class Streamer {
  sent = '';
  private timer?: NodeJS.Timeout;
  private seq = 0;
  constructor(
    readonly client: Client,
    readonly id: number,
  ) {}
  start(): void {
    this.timer = setInterval(() => {
      const line = `tunnel-${this.id}-${this.seq++}\n`;
      this.sent += line;
      if (!this.client.closed) this.client.socket.write(line);
    }, 50);
  }
  async stop(): Promise<void> {
    clearInterval(this.timer);
    const echoed = () => this.client.closed || this.client.received === this.sent;
    await waitFor(`tunnel ${this.id} to echo all it sent`, echoed, 5000).catch(() => {});
  }
}

beforeAll(async () => {
  logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'isolation-logs-'));
  tunnelPort = await freePort();
  backendPort = await freePort('127.0.0.2');
  backends.push(await startEcho('127.0.0.2', backendPort), await startEcho('127.0.0.3', backendPort));
  steadyPort = await freePort();
  shim = await startShim({
    'steady.yaml': serviceYaml({
      name: 'steady',
      namespace: 'e2e',
      clusterIP: '10.96.0.20',
      port: steadyPort,
      annotations: {
        'tunnel-shim.io/tunnel-port': String(tunnelPort),
        'tunnel-shim.io/access-log': path.join(logDir, 'steady.log'),
      },
      endpoints: [{ ip: '127.0.0.2', port: backendPort }],
    }),
  });
  // One worker each: all 20 tunnels ride one pooled HTTP/2 connection.
  [terminator, originator] = await Promise.all([
    startEnvoy({ role: 'terminate', nodeId: 'iso-terminator', xdsAddress: shim.xdsAddress }),
    startEnvoy({
      role: 'originate',
      nodeId: 'iso-originator',
      xdsAddress: shim.xdsAddress,
      listenAddress: '127.0.0.1',
    }),
  ]);
  await waitFor(
    'the steady tunnel',
    () =>
      roundTrip(steadyPort).then(
        () => true,
        () => false,
      ),
    20_000,
    100,
  );
}, 40_000);

afterAll(async () => {
  await Promise.all([originator?.stop(), terminator?.stop()]);
  await shim?.stop();
  await Promise.all(backends.map((b) => b.close()));
  fs.rmSync(logDir, { recursive: true, force: true });
});

async function synced(): Promise<boolean> {
  const nodes = await debugNodes(shim.adminUrl);
  return ['iso-originator', 'iso-terminator'].every((id) => {
    const n = nodes.find((x) => x.id === id);
    return n !== undefined && Object.values(n.types).every((t) => t.status === 'SYNCED' || t.status === 'NOT_SENT');
  });
}

it(
  "20 streaming tunnels survive 10 unrelated Services coming and going; only a changed Service's own " +
    'listener drains',
  async () => {
    const streamers = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => new Streamer(await Client.connect(steadyPort), i)),
    );
    for (const s of streamers) s.start();
    const cxBefore = await originator.stat(`cluster.originate/e2e/steady/${steadyPort}.upstream_cx_total`);
    expect(cxBefore).toBeGreaterThan(0);

    // The highest counts of draining filter chains and listeners the terminator shows while a phase runs.
    const draining = { chains: 0, listeners: 0 };
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const stats = await terminator.stats().catch(() => new Map<string, number>());
        draining.chains = Math.max(draining.chains, stats.get('listener_manager.total_filter_chains_draining') ?? 0);
        draining.listeners = Math.max(draining.listeners, stats.get('listener_manager.total_listeners_draining') ?? 0);
        await sleep(50);
      }
    })();
    try {
      const phase = async (what: string, change: () => void, check: () => Promise<unknown>) => {
        draining.chains = draining.listeners = 0;
        change();
        const done = async () =>
          (await check().then(
            () => true,
            () => false,
          )) && synced();
        await waitFor(what, done, 20_000, 100).catch(async (e) => {
          throw new Error(`${(e as Error).message}; nodes: ${JSON.stringify(await debugNodes(shim.adminUrl))}`);
        });
        // A drained chain closes its connections after the 1 s drain time: give it the time to show.
        await sleep(1500);
        return `${draining.chains} chains, ${draining.listeners} listeners`;
      };

      const variants = [
        { ip: '127.0.0.3', placement: 'sidecar', every: false },
        { ip: '127.0.0.2', placement: 'sidecar', every: true },
        { ip: '127.0.0.3', placement: 'gateway', every: true },
        { ip: '127.0.0.3', placement: 'sidecar', every: true },
        { ip: '127.0.0.3', placement: 'sidecar', every: false },
      ] as const;
      const drains: string[] = [];
      for (let round = 0; round < 10; round++) {
        const v = variants[round % variants.length]!;
        const name = `churn-${round}`;
        const port = await freePort();
        const plain = { 'tunnel-shim.io/tunnel-port': String(tunnelPort) };
        const annotations = v.every ? await everyAnnotation(name, v.placement) : plain;
        const endpoints = [{ ip: v.ip, port: backendPort }];
        const yaml = serviceYaml({
          name,
          namespace: 'e2e',
          clusterIP: `10.96.1.${round}`,
          port,
          annotations,
          endpoints,
        });
        const added = await phase(
          `${name} to carry bytes`,
          () => shim.write(`${name}.yaml`, yaml),
          () => roundTrip(port),
        );
        const removed = await phase(
          `${name} to be gone`,
          () => shim.remove(`${name}.yaml`),
          async () => {
            const alive = await roundTrip(port).then(
              () => true,
              () => false,
            );
            if (alive) throw new Error('still served');
          },
        );
        const label = `${name}@${v.ip} ${v.placement}${v.every ? ' every annotation' : ''}`;
        drains.push(`${label}: added ${added}, removed ${removed}`);
        // A Service on the steady tunnels' own IP has no listener of its own: nothing may drain. On an IP
        // of its own, its removal drains exactly that IP's listener.
        const gone = v.ip === '127.0.0.2' ? 0 : 1;
        expect(drains.at(-1)).toBe(`${label}: added 0 chains, 0 listeners, removed 0 chains, ${gone} listeners`);
      }
    } finally {
      polling = false;
      await poller;
    }
    await Promise.all(streamers.map((s) => s.stop()));
    for (const s of streamers) {
      expect(s.client.closed, `tunnel ${s.id} was closed`).toBe(false);
      expect(s.client.received.length, `tunnel ${s.id} echoed`).toBe(s.sent.length);
    }
    // Still the same pooled connections: none was drained, closed or replaced.
    expect(await originator.stat(`cluster.originate/e2e/steady/${steadyPort}.upstream_cx_total`)).toBe(cxBefore);
    expect(await terminator.stat(`http.terminate_${tunnelPort}.downstream_cx_drain_close`)).toBe(0);
    // The originator only ever added and removed other Services' listeners.
    expect(await originator.stat('listener_manager.listener_modified')).toBe(0);
    for (const s of streamers) s.client.close();
  },
  180_000,
);
