// mTLS data-plane figures (issue 11): new-connection latency through (a) the shim's pooled mTLS
// tunnel (`tunnel-shim.io/mtls: strict`, certificates served by the shim over SDS) and (b) two
// Envoys with a per-connection mTLS tcp_proxy (bench/static/tcp-mtls-*.yaml, certificates from the
// development CA in a temp dir), on loopback and across the delayed link (link.ts); the CPU each
// Envoy spends per 1,000 new connections (/proc/PID/stat) and the TLS handshakes each side counts
// (`ssl.handshake`): the pooled path should pay one per HTTP/2 connection, the other one per connection.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Shim } from '../src/shim.js';
import { FileSource } from '../src/sources/file.js';
import { issue, testCa } from '../test/helpers/certs.js';
import { envoyBinary, startEnvoy } from '../test/helpers/envoy.js';
import { freePort } from '../test/helpers/net.js';
import type { Netns } from '../test/helpers/netns.js';
import { serviceYaml } from '../test/helpers/objects.js';
import { backend } from './backend.js';
import { benchDir, percentile, sleep, started } from './child.js';
import { hops } from './dataplane-hops.js';
import { backendIn, connect, shortConnections, waitListening } from './dataplane.js';
import { delayedLink } from './link.js';
import { cpuSeconds } from './proc.js';

type Row = [string, string, string, string, string];

/** An Envoy as the benchmark reads it: its process (for CPU) and its counters. */
interface Side {
  pid: number;
  counters(): Promise<Map<string, number>>;
}

async function counters(adminUrl: string): Promise<Map<string, number>> {
  const res = await fetch(`${adminUrl}/stats?usedonly&type=Counters`, { signal: AbortSignal.timeout(5000) });
  const out = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    const i = line.lastIndexOf(': ');
    if (i > 0) out.set(line.slice(0, i), Number(line.slice(i + 2)));
  }
  return out;
}

const sum = async (side: Side, pattern: RegExp) => {
  let total = 0;
  for (const [name, value] of await side.counters()) if (pattern.test(name)) total += value;
  return total;
};

/** A hand-written Envoy with an admin port (for its stats); `prefix` runs it in a namespace. */
async function staticEnvoy(template: string, vars: Record<string, string | number>, prefix: string[] = []) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-envoy-'));
  let text = fs.readFileSync(path.join(benchDir, 'static', template), 'utf8');
  for (const [k, v] of Object.entries(vars)) text = text.replaceAll(`\${${k}}`, String(v));
  fs.writeFileSync(path.join(dir, 'envoy.yaml'), text);
  const adminFile = path.join(dir, 'admin');
  const argv = [...prefix, envoyBinary(), '-c', path.join(dir, 'envoy.yaml'), '--concurrency', '1'];
  argv.push('--disable-hot-restart', '-l', 'error', '--admin-address-path', adminFile);
  argv.push('--base-id-path', path.join(dir, 'base-id'), '--use-dynamic-base-id');
  // `ip netns exec` execs Envoy: the pid is Envoy's.
  const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
  started.add(child);
  child.once('exit', () => started.delete(child));
  for (let i = 0; i < 200 && !(fs.existsSync(adminFile) && fs.readFileSync(adminFile, 'utf8').trim()); i++) {
    if (child.exitCode !== null) throw new Error(`static Envoy ${template} exited with ${child.exitCode}`);
    await sleep(50);
  }
  const adminUrl = `http://${fs.readFileSync(adminFile, 'utf8').trim()}`;
  const side: Side = { pid: child.pid!, counters: () => counters(adminUrl) };
  return { side, stop: () => void child.kill('SIGTERM') };
}

/** One way through two Envoys, and what was measured through it. */
interface Path {
  port: number;
  originator: Side;
  terminator: Side;
  /** The originator's cluster to the terminator, as a pattern of its stats prefix. */
  cluster: string;
  latency: number[];
  roundP50: number[];
  failed: number;
  /** CPU seconds while this path carried its connections. */
  cpuO: number;
  cpuT: number;
  connections: number;
  handshakesO: number;
  handshakesT: number;
  resumedO: number;
  /** Since the Envoys started (warm-up included): handshakes and upstream connections of the originator. */
  total: string;
}

interface Far {
  address: string;
  backendPort: number;
  netns?: Netns;
  xdsHost: string;
}

/** The pooled mTLS tunnel (shim) and the per-connection mTLS tcp_proxy (static) to the far backend. */
async function setUp(far: Far) {
  const stops: (() => unknown)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s();
  };
  try {
    const ca = await testCa();
    const [client, server] = await Promise.all([issue(ca, 'bench/client'), issue(ca, 'bench/server')]);
    const farPort = () => freePort(far.netns ? '127.0.0.1' : far.address);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-mtls-'));
    const appPort = await freePort();
    fs.writeFileSync(
      path.join(dir, 'echo.yaml'),
      serviceYaml({
        name: 'echo',
        namespace: 'bench',
        clusterIP: '10.96.0.10',
        port: appPort,
        annotations: {
          'tunnel-shim.io/tunnel-port': String(await farPort()),
          'tunnel-shim.io/mtls': 'strict',
          'tunnel-shim.io/allowed-identities': client.id,
        },
        endpoints: [{ ip: far.address, port: far.backendPort }],
      }),
    );
    fs.writeFileSync(path.join(dir, 'certs.yaml'), [client.yaml, server.yaml].join('---\n'));
    const shim = new Shim({
      source: new FileSource(dir),
      xdsAddress: `${far.xdsHost}:0`,
      adminAddress: '127.0.0.1:0',
      insecureIdentities: true,
      logger: pino({ level: 'silent' }),
    });
    await shim.start();
    stops.push(() => shim.stop());
    const xdsAddress = `${far.xdsHost}:${shim.xdsPort}`;
    const netns = far.netns ? { exec: far.netns.exec, adminHost: far.address } : undefined;
    const common = { xdsAddress, concurrency: 1 };
    const t = await startEnvoy({
      ...common,
      role: 'terminate',
      nodeId: 'bench-mt',
      listenAddress: far.address,
      netns,
      identity: 'bench/server',
    });
    stops.push(() => t.stop());
    const o = await startEnvoy({
      ...common,
      role: 'originate',
      nodeId: 'bench-mo',
      listenAddress: '127.0.0.1',
      identity: 'bench/client',
    });
    stops.push(() => o.stop());
    const side = (e: typeof o): Side => ({ pid: e.process.pid!, counters: () => e.stats() });

    // The per-connection baseline's certificates: the same CA, as files.
    const certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-mtls-certs-'));
    fs.writeFileSync(path.join(certDir, 'ca.crt'), ca.certPem);
    for (const [name, who] of [
      ['client', client],
      ['server', server],
    ] as const) {
      fs.writeFileSync(path.join(certDir, `${name}.crt`), who.leaf.certPem);
      fs.writeFileSync(path.join(certDir, `${name}.key`), who.leaf.keyPem);
    }
    const vars = {
      TUNNEL_ADDRESS: far.address,
      BACKEND_ADDRESS: far.address,
      BACKEND_PORT: far.backendPort,
      CERT_DIR: certDir,
      CLIENT_ID: client.id,
      SERVER_ID: server.id,
    };
    // Envoy's default (a client resumes TLS sessions), and every connection a full handshake.
    const perConnection = async (sessionKeys: number) => {
      const ports = { APP_PORT: await freePort(), TUNNEL_PORT: await farPort(), SESSION_KEYS: sessionKeys };
      const st = await staticEnvoy('tcp-mtls-terminate.yaml', { ...vars, ...ports }, far.netns?.exec ?? []);
      stops.push(st.stop);
      const so = await staticEnvoy('tcp-mtls-originate.yaml', { ...vars, ...ports });
      stops.push(so.stop);
      const path: Path = {
        port: ports.APP_PORT,
        originator: so.side,
        terminator: st.side,
        cluster: 'cluster\\.next',
        ...blank(),
      };
      return path;
    };

    const pooled: Path = {
      port: appPort,
      originator: side(o),
      terminator: side(t),
      cluster: 'cluster\\.originate/bench/echo/\\d+',
      ...blank(),
    };
    const paths: Paths = { pooled, perConn: await perConnection(1), perConnFull: await perConnection(0) };
    return { paths, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

const blank = () => ({
  latency: [],
  roundP50: [],
  failed: 0,
  cpuO: 0,
  cpuT: 0,
  connections: 0,
  handshakesO: 0,
  handshakesT: 0,
  resumedO: 0,
  total: '',
});
const listenerHandshakes = /^listener\.[\d.]+_\d+\.ssl\.handshake$/;
/** The originator's handshakes, resumed sessions and upstream connections; the terminator's handshakes. */
async function tlsCounters(p: Path) {
  const stat = (name: string) => sum(p.originator, new RegExp(`^${p.cluster}\\.${name}$`));
  return {
    o: await stat('ssl\\.handshake'),
    resumed: await stat('ssl\\.session_reused'),
    upstream: await stat('upstream_cx_total'),
    versions: [...(await p.originator.counters())]
      .filter(([name, n]) => n > 0 && new RegExp(`^${p.cluster}\\.ssl\\.versions\\.`).test(name))
      .map(([name]) => name.slice(name.lastIndexOf('.versions.') + 10))
      .join(', '),
    t: await sum(p.terminator, listenerHandshakes),
  };
}

/** Both paths in turns, as dataplane.ts does; CPU and handshakes counted around each path's own rounds. */
async function measure(paths: Path[], count: number, rounds: number): Promise<void> {
  for (const p of paths) {
    await waitListening(p.port, '127.0.0.1');
    await shortConnections(p.port, '127.0.0.1', 20); // warm: the pooled path opens its HTTP/2 connection
  }
  const before = new Map<Path, Awaited<ReturnType<typeof tlsCounters>>>();
  for (const p of paths) before.set(p, await tlsCounters(p));
  for (let r = 0; r < rounds; r++) {
    for (const p of paths) {
      const n = Math.round(count / rounds);
      const [o0, t0] = [cpuSeconds(p.originator.pid), cpuSeconds(p.terminator.pid)];
      const round = await shortConnections(p.port, '127.0.0.1', n);
      p.cpuO += cpuSeconds(p.originator.pid) - o0;
      p.cpuT += cpuSeconds(p.terminator.pid) - t0;
      p.connections += n;
      p.latency.push(...round);
      p.roundP50.push(percentile(round, 50));
      p.failed += n - round.length;
    }
  }
  for (const p of paths) {
    const [was, now] = [before.get(p)!, await tlsCounters(p)];
    p.handshakesO = now.o - was.o;
    p.handshakesT = now.t - was.t;
    p.resumedO = now.resumed - was.resumed;
    p.total =
      `${now.o} / ${now.t} (${now.versions}) over ${now.upstream} upstream connection(s) ` +
      `for ${p.connections + 20} app connections`;
  }
}

const lat = (f: Path) =>
  `${percentile(f.latency, 50).toFixed(2)} / ${percentile(f.latency, 99).toFixed(2)} ms` +
  ` (round p50s ${Math.min(...f.roundP50).toFixed(2)}-${Math.max(...f.roundP50).toFixed(2)})` +
  (f.failed ? ` (${f.failed} failed)` : '');
const per1000 = (x: number, f: Path) => (x * 1000) / f.connections;
const cpu = (f: Path) => `${per1000(f.cpuO * 1000, f).toFixed(0)} / ${per1000(f.cpuT * 1000, f).toFixed(0)} ms`;
const handshakes = (f: Path) => `${per1000(f.handshakesO, f).toFixed(0)} / ${per1000(f.handshakesT, f).toFixed(0)}`;

interface Paths {
  pooled: Path;
  perConn: Path;
  perConnFull: Path;
}

function rows(scenario: string, { pooled, perConn, perConnFull }: Paths, goal?: number): Row[] {
  const ratioOf = (base: Path, q: number) => percentile(pooled.latency, q) / percentile(base.latency, q);
  const ratio = (base: Path, q: number) => ratioOf(base, q).toFixed(2);
  const resumed = (f: Path) => `${handshakes(f)} (${per1000(f.resumedO, f).toFixed(0)} resumed)`;
  const met = goal !== undefined && ratioOf(perConn, 50) <= goal;
  return [
    [scenario, 'new-connection p50 / p99: pooled mTLS tunnel (shim)', lat(pooled), 'report', ''],
    [scenario, 'new-connection p50 / p99: per-connection mTLS tcp_proxy', lat(perConn), 'report', ''],
    [scenario, 'the same, no TLS session resumption (max_session_keys: 0)', lat(perConnFull), 'report', ''],
    [
      scenario,
      'ratio pooled / per-connection, p50; p99 (no resumption: p50; p99)',
      `${ratio(perConn, 50)}; ${ratio(perConn, 99)} (${ratio(perConnFull, 50)}; ${ratio(perConnFull, 99)})`,
      goal ? `p50 <= ${goal}` : 'report',
      goal ? (met ? 'met' : 'MISSED') : '',
    ],
    [
      scenario,
      'TLS handshakes per 1,000 connections, originator / terminator: pooled; per-conn; no resumption',
      `${handshakes(pooled)}; ${resumed(perConn)}; ${resumed(perConnFull)}`,
      'report',
      '',
    ],
    [
      scenario,
      'TLS handshakes since start, originator / terminator: pooled; per-connection',
      `${pooled.total}; ${perConn.total}`,
      'report',
      '',
    ],
    [
      scenario,
      'CPU per 1,000 new connections, originator / terminator Envoy: pooled; per-conn; no resumption',
      `${cpu(pooled)}; ${cpu(perConn)}; ${cpu(perConnFull)}`,
      'report',
      '',
    ],
  ];
}

const log = (s: string) => process.stderr.write(`bench: data plane mTLS: ${s}\n`);

async function loopback(count: number, rounds: number): Promise<Row[]> {
  const be = await backend();
  const { paths, stop } = await setUp({ address: '127.0.0.2', backendPort: be.port, xdsHost: '127.0.0.1' });
  try {
    await measure(Object.values(paths), count, rounds);
    log(`loopback: ${rounds} rounds done`);
  } finally {
    await stop();
    be.close();
  }
  return rows(`data plane mTLS, ${count} short connections`, paths);
}

/** The same with the terminating side across the link (`delayMs` each way); bounded by `limitMs`. */
async function acrossLink(delayMs: number, count: number, rounds: number, limitMs: number): Promise<Row[]> {
  const scenario = `data plane mTLS across a ${2 * delayMs} ms RTT link, ${count} short connections`;
  const cleanup: (() => unknown)[] = [];
  let timer: NodeJS.Timeout | undefined;
  try {
    const work = (async () => {
      const link = await delayedLink(delayMs);
      cleanup.push(() => link.destroy());
      log(`link: ${link.how}`);
      const be = await backendIn(link.ns);
      cleanup.push(() => be.close());
      const far = {
        address: link.ns.addresses[0]!,
        backendPort: be.port,
        netns: link.ns,
        xdsHost: link.ns.hostAddress,
      };
      const paths = await setUp(far);
      cleanup.push(() => paths.stop());
      // One TCP handshake across the link: the unit the latencies are counted in.
      await waitListening(far.backendPort, far.address);
      const rtt: number[] = [];
      for (let i = 0; i < 20; i++) {
        const start = performance.now();
        (await connect(far.backendPort, far.address)).destroy();
        rtt.push(performance.now() - start);
      }
      await measure(Object.values(paths.paths), count, rounds);
      log(`link: ${rounds} rounds done`);
      const linkRow: Row = [
        scenario,
        'the link: TCP connect p50 (one round trip)',
        `${percentile(rtt, 50).toFixed(2)} ms`,
        'report',
        '',
      ];
      return [linkRow, ...rows(scenario, paths.paths, 0.6)];
    })();
    work.catch(() => {});
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`not done within ${limitMs / 1000} s`)), limitMs);
    });
    return await Promise.race([work, limit]);
  } catch (err) {
    log(`link: ${(err as Error).message}`);
    return [[scenario, 'new-connection latency across the link', `not measured: ${(err as Error).message}`, '', '']];
  } finally {
    clearTimeout(timer);
    for (const c of cleanup.reverse()) await c();
  }
}

export async function runDataPlaneMtls(scale: number): Promise<Row[]> {
  const count = Math.max(100, Math.round(1000 * scale));
  const rounds = 5;
  const rows = [...(await loopback(count, rounds)), ...(await acrossLink(1, count, rounds, 180_000))];
  return [...rows, ...(await hops(count, rounds))];
}
