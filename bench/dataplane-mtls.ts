// mTLS data-plane figures (issue 11): new-connection latency through (a) the shim's pooled mTLS
// tunnel (`tunnel-shim.io/mtls: strict`, certificates served by the shim over SDS) and (b) two
// Envoys with a per-connection mTLS tcp_proxy (bench/static/tcp-mtls-*.yaml, certificates from the
// development CA in a temp dir), with and without TLS session resumption (mtls-paths.ts), on
// loopback and across the delayed link (link.ts); the CPU each
// Envoy spends per 1,000 new connections (/proc/PID/stat) and the TLS handshakes each side counts
// (`ssl.handshake`): the pooled path should pay one per HTTP/2 connection, the other one per connection.
import { backend } from './backend.js';
import { percentile } from './child.js';
import { hops } from './dataplane-hops.js';
import { backendIn, connect, shortConnections, waitListening } from './dataplane.js';
import { delayedLink } from './link.js';
import { setUp, tlsCounters, type Path, type Paths } from './mtls-paths.js';
import { cpuSeconds } from './proc.js';

type Row = [string, string, string, string, string];

/** The paths in turns, as dataplane.ts does; CPU and handshakes counted around each path's own rounds. */
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
