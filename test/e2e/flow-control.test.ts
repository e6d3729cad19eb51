// Head-of-line blocking on a pooled connection: tunnels whose backend stops reading must not take the
// HTTP/2 connection's window from the tunnels beside them. 2, then 5, stalled tunnels (their clients
// write as fast as they may) share one pooled connection with 10 healthy ones, each offering 1 MiB/s;
// the healthy ones must deliver at least 90 % of what they offer, and the originator's memory
// (Envoy's own server.memory_allocated) must stay bounded. Envoy's defaults (256 MiB windows, stream
// window = connection window) fail this: two stalled streams stop every other one.
import net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startEnvoy, type EnvoyProcess } from '../helpers/envoy.js';
import { freePort } from '../helpers/net.js';
import { serviceYaml } from '../helpers/objects.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { sleep, waitFor } from '../helpers/wait.js';

/** Backend: a connection that starts with `stall` is never read again; `sink N` ones are read and counted. */
class Backend {
  readonly received = new Map<string, number>();
  readonly sockets = new Set<net.Socket>();
  private server = net.createServer((socket) => {
    this.sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => this.sockets.delete(socket));
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\n');
      if (end < 0) return;
      const [kind, id] = head.slice(0, end).split(' ');
      socket.off('data', onData);
      if (kind === 'stall') return void socket.pause();
      this.received.set(id!, head.length - end - 1);
      socket.on('data', (d: Buffer) => this.received.set(id!, this.received.get(id!)! + d.length));
    };
    socket.on('data', onData);
  });
  port = 0;
  async listen(host: string): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, host, resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

const chunk = Buffer.alloc(16 * 1024, 'x');

/** Writes as fast as the socket takes it, for as long as it lives. */
function stalledClient(port: number, id: number): net.Socket {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.write(`stall ${id}\n`);
  const pump = () => {
    while (!socket.destroyed && socket.write(chunk));
  };
  socket.on('drain', pump);
  socket.on('connect', pump);
  return socket;
}

/** Offers `bytesPerSecond`, 16 KiB at a time, never queueing more than 256 KiB locally; counts what it offered. */
class HealthyClient {
  offered = 0;
  readonly socket: net.Socket;
  private timer: NodeJS.Timeout;
  constructor(
    port: number,
    readonly id: string,
    bytesPerSecond: number,
  ) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.on('error', () => {});
    this.socket.write(`sink ${id}\n`);
    const every = (chunk.length / bytesPerSecond) * 1000;
    this.timer = setInterval(() => {
      this.offered += chunk.length;
      if (this.socket.writableLength < 256 * 1024) this.socket.write(chunk);
    }, every);
  }
  stop(): void {
    clearInterval(this.timer);
    this.socket.destroy();
  }
}

let shim: TestShim;
let originator: EnvoyProcess;
let terminator: EnvoyProcess;
let backend: Backend;
let port: number;

beforeAll(async () => {
  backend = new Backend();
  await backend.listen('127.0.0.2');
  port = await freePort();
  const tunnelPort = await freePort();
  shim = await startShim({
    'flow.yaml': serviceYaml({
      name: 'flow',
      namespace: 'e2e',
      port,
      annotations: { 'tunnel-shim.io/tunnel-port': String(tunnelPort) },
      endpoints: [{ ip: '127.0.0.2', port: backend.port }],
    }),
  });
  // One worker each: every tunnel rides the same pooled HTTP/2 connection.
  [terminator, originator] = await Promise.all([
    startEnvoy({ role: 'terminate', nodeId: 'flow-terminator', xdsAddress: shim.xdsAddress }),
    startEnvoy({
      role: 'originate',
      nodeId: 'flow-originator',
      xdsAddress: shim.xdsAddress,
      listenAddress: '127.0.0.1',
    }),
  ]);
  await waitFor(
    'the flow tunnel',
    async () => {
      const c = new HealthyClient(port, 'probe', 1024 * 1024);
      await sleep(200);
      c.stop();
      return (backend.received.get('probe') ?? 0) > 0;
    },
    20_000,
    100,
  );
}, 40_000);

afterAll(async () => {
  await Promise.all([originator?.stop(), terminator?.stop()]);
  await shim?.stop();
  await backend?.close();
});

const rate = 1024 * 1024;
const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

it(
  '2, then 5, stalled tunnels beside 10 healthy ones on one pooled connection: the healthy ones keep ' +
    '>= 90 %, memory stays bounded',
  async () => {
    const memoryAtStart = await originator.stat('server.memory_allocated');
    const healthy = Array.from({ length: 10 }, (_, i) => new HealthyClient(port, `h${i}`, rate));
    const stalled: net.Socket[] = [];
    const figures: string[] = [];
    try {
      const delivering = () => healthy.every((h) => (backend.received.get(h.id) ?? 0) > 0);
      await waitFor('every healthy tunnel to deliver', delivering, 10_000, 50);
      for (const count of [2, 5]) {
        while (stalled.length < count) stalled.push(stalledClient(port, stalled.length));
        // Let the stalled tunnels fill whatever they can: their backend sockets, Envoy's buffers, windows.
        await sleep(3000);
        const offered = healthy.map((h) => h.offered);
        const delivered = healthy.map((h) => backend.received.get(h.id) ?? 0);
        await sleep(3000);
        const got = (h: HealthyClient) => backend.received.get(h.id) ?? 0;
        const shares = healthy.map((h, i) => (got(h) - delivered[i]!) / (h.offered - offered[i]!));
        const memory = await originator.stat('server.memory_allocated');
        const terminatorMemory = await terminator.stat('server.memory_allocated');
        figures.push(
          `${count} stalled: healthy share min ${(Math.min(...shares) * 100).toFixed(0)} %, ` +
            `originator memory ${mib(memoryAtStart)} -> ${mib(memory)}, terminator ${mib(terminatorMemory)}`,
        );
        for (const [i, share] of shares.entries()) {
          expect(share, `${figures.at(-1)}: healthy tunnel ${i}`).toBeGreaterThanOrEqual(0.9);
        }
        // Each stalled tunnel may hold its buffers (listener and cluster: 64 KiB each, plus the stream
        // window it may send), never the whole connection; 4 MiB each is a generous bound.
        expect(memory - memoryAtStart, figures.at(-1)).toBeLessThan(count * 4 * 1024 * 1024);
      }
    } finally {
      for (const h of healthy) h.stop();
      for (const s of stalled) s.destroy();
      console.log(figures.join('\n'));
    }
  },
  60_000,
);
