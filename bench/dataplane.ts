// Data-plane figures, bounded: one TCP connection's throughput and 1,000 short connections'
// new-connection latency, through (a) no proxy, (b) the two-Envoy tunnel configured by the shim,
// (c) the same tunnel configured statically by hand (bench/static/tunnel-*.yaml) and (d) two Envoys
// with a plain per-connection tcp_proxy (bench/static/tcp-*.yaml). Every Envoy runs with one worker,
// so the comparison is about configuration, not parallelism. First all on loopback, then latency
// again with the terminating side (terminators and backend) in a namespace across a link with a
// delay each way (link.ts), where a new TCP connection costs a real round trip.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Shim } from '../src/shim.js';
import { FileSource } from '../src/sources/file.js';
import { envoyBinary, startEnvoy } from '../test/helpers/envoy.js';
import { freePort } from '../test/helpers/net.js';
import type { Netns } from '../test/helpers/netns.js';
import { serviceYaml } from '../test/helpers/objects.js';
import { backend } from './backend.js';
import { benchDir, nodeScript, percentile, sleep, started } from './child.js';
import { delayedLink } from './link.js';

type Row = [string, string, string, string, string];

export async function connect(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, host, () => resolve(s));
    s.once('error', reject);
  });
}

async function throughput(port: number, host: string, bytes: number): Promise<number> {
  const s = await connect(port, host);
  s.setNoDelay(true);
  const header = Buffer.alloc(9);
  header[0] = 0x54;
  header.writeBigUInt64BE(BigInt(bytes), 1);
  const chunk = Buffer.alloc(1 << 20, 7);
  const start = performance.now();
  const done = new Promise<void>((resolve, reject) => {
    s.once('data', () => resolve());
    s.once('error', reject);
    setTimeout(() => reject(new Error('throughput run timed out')), 60_000);
    s.once('close', () => reject(new Error('connection closed during the throughput run')));
  });
  s.write(header);
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    if (!s.write(sent + chunk.length > bytes ? chunk.subarray(0, bytes - sent) : chunk))
      await new Promise((r) => s.once('drain', r));
  }
  await done;
  const seconds = (performance.now() - start) / 1000;
  s.destroy();
  return bytes / seconds;
}

/** New-connection latency: connect, send one byte, until it comes back. Sequential, as a client would. */
let failed = 0;

export async function shortConnections(port: number, host: string, count: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    const s = await connect(port, host);
    const ok = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 5000);
      s.once('data', () => (clearTimeout(timer), resolve(true)));
      s.once('error', () => (clearTimeout(timer), resolve(false)));
      s.once('close', () => (clearTimeout(timer), resolve(false)));
      s.write('E');
    });
    s.destroy();
    if (ok) out.push(performance.now() - start);
    else failed++;
  }
  return out;
}

export async function waitListening(port: number, host: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      (await connect(port, host)).destroy();
      return;
    } catch {
      await sleep(50);
    }
  }
  throw new Error(`nothing listens on ${host}:${port}`);
}

/** A hand-written Envoy from a template in bench/static/; `prefix` runs it elsewhere (`ip netns exec NAME`). */
export async function staticEnvoy(template: string, vars: Record<string, string | number>, prefix: string[] = []) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-envoy-'));
  let text = fs.readFileSync(path.join(benchDir, 'static', template), 'utf8');
  for (const [k, v] of Object.entries(vars)) text = text.replaceAll(`\${${k}}`, String(v));
  fs.writeFileSync(path.join(dir, 'envoy.yaml'), text);
  const argv = [
    ...prefix,
    envoyBinary(),
    '-c',
    path.join(dir, 'envoy.yaml'),
    '--concurrency',
    '1',
    '--disable-hot-restart',
    '-l',
    'error',
    '--base-id-path',
    path.join(dir, 'base-id'),
    '--use-dynamic-base-id',
    '--admin-address-path', // where a template with an admin listener says it listens
    path.join(dir, 'admin'),
  ];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
  started.add(child); // killed on exit, also after a failure
  child.once('exit', () => started.delete(child));
  return { stop: () => child.kill('SIGTERM'), child, adminFile: path.join(dir, 'admin') };
}

/** The backend in a namespace: its own node process there (stdin held open: it ends with us). */
export async function backendIn(ns: Netns): Promise<{ port: number; close(): void }> {
  const argv = [...ns.exec, ...nodeScript('backend.ts'), ns.addresses[0]!];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  started.add(child);
  child.once('exit', () => started.delete(child));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the backend in the namespace did not start within 20 s')), 20_000);
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /port (\d+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`the backend in the namespace exited with ${code}`)));
  });
  return { port, close: () => child.kill('SIGKILL') };
}

/** One way to the backend and what was measured through it. */
interface Path {
  port: number;
  host: string;
  bps: number[];
  latency: number[];
  /** Each round's p50 latency: how much the rounds differ. */
  roundP50: number[];
  /** Connections that closed or timed out before their byte came back. */
  failed: number;
}

const newPath = (port: number, host: string): Path => ({ port, host, bps: [], latency: [], roundP50: [], failed: 0 });

/**
 * Every path is set up first and measured in rounds, taking turns (plain, shim, static, per
 * connection), so a change in the machine's load hits them all alike; throughput (none when `bytes`
 * is 0) is the median of the rounds, latency pools every round's connections.
 */
async function measureInTurns(paths: Path[], bytes: number, count: number, rounds: number): Promise<void> {
  for (const p of paths) {
    await waitListening(p.port, p.host);
    await shortConnections(p.port, p.host, 20); // warm pools and caches
  }
  for (let r = 0; r < rounds; r++) {
    for (const p of paths) {
      if (bytes > 0) p.bps.push(await throughput(p.port, p.host, Math.round(bytes / rounds)));
      failed = 0;
      const round = await shortConnections(p.port, p.host, Math.round(count / rounds));
      p.latency.push(...round);
      p.roundP50.push(percentile(round, 50));
      p.failed += failed;
    }
  }
}

const median = (xs: number[]) => percentile(xs, 50);

/** Where the terminating side lives: loopback (127.0.0.2), or a namespace across the delayed link. */
interface Far {
  address: string;
  backendPort: number;
  netns?: Netns;
  /** Where the shim's xDS listens: an address both sides reach. */
  xdsHost: string;
}

/** The four paths through to the far side's backend; `stop` ends every process it started. */
async function setUp(far: Far) {
  const stops: (() => unknown)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s();
  };
  try {
    const authority = 'echo.bench.svc.cluster.local:7000';
    // Ports on the far side: in a fresh namespace nothing listens, so any free number will do.
    const farPort = () => freePort(far.netns ? '127.0.0.1' : far.address);
    const plain = newPath(far.backendPort, far.address);

    // (b) configured by the shim
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-shim-'));
    const appPort = await freePort();
    const tunnelPort = await farPort();
    fs.writeFileSync(
      path.join(dir, 'echo.yaml'),
      serviceYaml({
        name: 'echo',
        namespace: 'bench',
        clusterIP: '10.96.0.10',
        port: appPort,
        annotations: { 'tunnel-shim.io/tunnel-port': String(tunnelPort) },
        endpoints: [{ ip: far.address, port: far.backendPort }],
      }),
    );
    const shim = new Shim({
      source: new FileSource(dir),
      xdsAddress: `${far.xdsHost}:0`,
      adminAddress: '127.0.0.1:0',
      logger: pino({ level: 'silent' }),
    });
    await shim.start();
    stops.push(() => shim.stop());
    const xds = `${far.xdsHost}:${shim.xdsPort}`;
    const netns = far.netns ? { exec: far.netns.exec, adminHost: far.address } : undefined;
    const terminator = await startEnvoy({
      role: 'terminate',
      nodeId: 'bench-t',
      xdsAddress: xds,
      listenAddress: far.address,
      concurrency: 1,
      netns,
    });
    stops.push(() => terminator.stop());
    const originator = await startEnvoy({
      role: 'originate',
      nodeId: 'bench-o',
      xdsAddress: xds,
      listenAddress: '127.0.0.1',
      concurrency: 1,
    });
    stops.push(() => originator.stop());
    const shimmed = newPath(appPort, '127.0.0.1');

    // (c) the same tunnel, static; (d) per-connection tcp_proxy. Terminators on the far side.
    const prefix = far.netns?.exec ?? [];
    const common = { TUNNEL_ADDRESS: far.address, BACKEND_ADDRESS: far.address, BACKEND_PORT: far.backendPort };
    const vars = { ...common, APP_PORT: await freePort(), TUNNEL_PORT: await farPort(), AUTHORITY: authority };
    for (const e of [
      await staticEnvoy('tunnel-terminate.yaml', vars, prefix),
      await staticEnvoy('tunnel-originate.yaml', vars),
    ])
      stops.push(e.stop);
    const stat = newPath(vars.APP_PORT, '127.0.0.1');
    const tvars = { ...common, APP_PORT: await freePort(), TUNNEL_PORT: await farPort() };
    for (const e of [
      await staticEnvoy('tcp-terminate.yaml', tvars, prefix),
      await staticEnvoy('tcp-originate.yaml', tvars),
    ])
      stops.push(e.stop);
    const tcp = newPath(tvars.APP_PORT, '127.0.0.1');

    const upstreamConnections = () => originator.stat(`cluster.originate/bench/echo/${appPort}.upstream_cx_total`);
    return { plain, shimmed, stat, tcp, upstreamConnections, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

const lat = (f: Path) =>
  `${percentile(f.latency, 50).toFixed(2)} / ${percentile(f.latency, 99).toFixed(2)} ` +
  `ms${f.failed ? ` (${f.failed} failed)` : ''}`;
/** The spread of the rounds' p50s. */
const spread = (f: Path) => `${Math.min(...f.roundP50).toFixed(2)}-${Math.max(...f.roundP50).toFixed(2)}`;
const pooledWins = (pooled: Path, perConn: Path) =>
  percentile(pooled.latency, 50) <= percentile(perConn.latency, 50) &&
  percentile(pooled.latency, 99) <= percentile(perConn.latency, 99);

async function loopback(bytes: number, count: number, rounds: number): Promise<Row[]> {
  const be = await backend();
  const { plain, shimmed, stat, tcp, upstreamConnections, stop } = await setUp({
    address: '127.0.0.2',
    backendPort: be.port,
    xdsHost: '127.0.0.1',
  });
  try {
    await measureInTurns([plain, shimmed, stat, tcp], bytes, count, rounds);
    log(
      `loopback: ${rounds} rounds done; the shim's tunnel carried ${count + 20} app connections over ` +
        `${await upstreamConnections()} upstream connection(s)`,
    );
  } finally {
    await stop();
    be.close();
  }
  const g = (bps: number) => ((bps * 8) / 1e9).toFixed(2);
  const gbit = (f: Path) => `${g(median(f.bps))} (${g(Math.min(...f.bps))}-${g(Math.max(...f.bps))}) Gbit/s`;
  const scenario = `data plane, ${count} short connections`;
  return [
    [
      'data plane, 1 TCP connection',
      `throughput (median of ${rounds} x ${Math.round(bytes / rounds) >> 20} MiB, in turns): plain / shim ` +
        `tunnel / static tunnel`,
      `${gbit(plain)} / ${gbit(shimmed)} / ${gbit(stat)}`,
      'report',
      '',
    ],
    [
      'data plane, 1 TCP connection',
      'ratio shim/plain; shim/static',
      `${(median(shimmed.bps) / median(plain.bps)).toFixed(2)}; ${(median(shimmed.bps) / median(stat.bps)).toFixed(2)}`,
      'shim >= static',
      median(shimmed.bps) >= median(stat.bps) ? 'met' : 'MISSED',
    ],
    [
      scenario,
      `new-connection p50 / p99 (round p50s ${spread(shimmed)}): pooled shim tunnel`,
      lat(shimmed),
      'report',
      '',
    ],
    [
      scenario,
      `new-connection p50 / p99 (round p50s ${spread(tcp)}): per-connection tcp_proxy`,
      lat(tcp),
      'pooled <= per-conn',
      pooledWins(shimmed, tcp) ? 'met' : 'MISSED',
    ],
    [scenario, 'new-connection p50 / p99: static tunnel; plain TCP', `${lat(stat)}; ${lat(plain)}`, 'report', ''],
  ];
}

/** The same latency figures with the terminating side across a link with `delayMs` each way; bounded by `limitMs`. */
async function acrossLink(delayMs: number, count: number, rounds: number, limitMs: number): Promise<Row[]> {
  const scenario = `data plane across a ${2 * delayMs} ms RTT link, ${count} short connections`;
  const cleanup: (() => unknown)[] = [];
  let closed = false;
  // What is set up after a timeout is taken down at once.
  const onCleanup = (f: () => unknown) => (closed ? void f() : void cleanup.push(f));
  const work = (async (): Promise<Row[]> => {
    const link = await delayedLink(delayMs);
    onCleanup(() => link.destroy());
    log(`link: ${link.how}`);
    const be = await backendIn(link.ns);
    onCleanup(() => be.close());
    const far = { address: link.ns.addresses[0]!, backendPort: be.port, netns: link.ns, xdsHost: link.ns.hostAddress };
    const paths = await setUp(far);
    onCleanup(() => paths.stop());
    // The link as TCP sees it: a handshake's round trip (the delay, plus what the bridge adds).
    await waitListening(far.backendPort, far.address);
    const rtt: number[] = [];
    for (let i = 0; i < 20; i++) {
      const start = performance.now();
      (await connect(far.backendPort, far.address)).destroy();
      rtt.push(performance.now() - start);
    }
    const { plain, shimmed, stat, tcp } = paths;
    await measureInTurns([plain, shimmed, stat, tcp], 0, count, rounds);
    log(
      `link: ${rounds} rounds done; the shim's tunnel carried ${count + 20} app connections over ` +
        `${await paths.upstreamConnections()} upstream connection(s)`,
    );
    return [
      [
        scenario,
        'the link: how the delay is made; TCP connect time p50 (one round trip)',
        `${link.how}; ${median(rtt).toFixed(2)} ms`,
        'report',
        '',
      ],
      [
        scenario,
        `new-connection p50 / p99 (round p50s ${spread(shimmed)}): pooled shim tunnel`,
        lat(shimmed),
        'report',
        '',
      ],
      [
        scenario,
        `new-connection p50 / p99 (round p50s ${spread(tcp)}): per-connection tcp_proxy`,
        lat(tcp),
        'pooled <= per-conn',
        pooledWins(shimmed, tcp) ? 'met' : 'MISSED',
      ],
      [scenario, 'new-connection p50 / p99: static tunnel; plain TCP', `${lat(stat)}; ${lat(plain)}`, 'report', ''],
    ];
  })();
  work.catch(() => {}); // after a timeout it may still fail; the row below already says so
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`not done within ${limitMs / 1000} s`)), limitMs)),
  );
  try {
    return await Promise.race([work, limit]);
  } catch (err) {
    log(`link: ${(err as Error).message}`);
    return [
      [
        scenario,
        'new-connection latency across the link',
        `not measured: ${(err as Error).message}`,
        'pooled <= per-conn',
        '',
      ],
    ];
  } finally {
    clearTimeout(timer);
    closed = true;
    for (const c of cleanup.reverse()) await c();
  }
}

const log = (s: string) => process.stderr.write(`bench: data plane: ${s}\n`);

export async function runDataPlane(scale: number): Promise<Row[]> {
  const bytes = Math.max(64, Math.round(512 * scale)) << 20;
  const count = Math.max(100, Math.round(1000 * scale));
  const rounds = 5;
  const rows = await loopback(bytes, count, rounds);
  // 1 ms each way (a cross-zone round trip); about 5 ms per connection and path, so 2 minutes is ample.
  rows.push(...(await acrossLink(1, count, rounds, 120_000)));
  return rows;
}
