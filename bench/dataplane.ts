// Data-plane figures, loopback only, bounded: one TCP connection's throughput and 1,000 short
// connections' new-connection latency, through (a) no proxy, (b) the two-Envoy tunnel configured by
// the shim, (c) the same tunnel configured statically by hand (bench/static/tunnel-*.yaml) and
// (d) two Envoys with a plain per-connection tcp_proxy (bench/static/tcp-*.yaml). Every Envoy runs
// with one worker, so the comparison is about configuration, not parallelism.
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
import { serviceYaml } from '../test/helpers/objects.js';
import { benchDir, percentile, sleep } from './child.js';

type Row = [string, string, string, string, string];

/** 'T' + 8-byte length: swallow that many bytes, then answer 'k'. 'E': echo everything. */
async function backend(): Promise<{ port: number; close(): void }> {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    let mode = '';
    let want = 0;
    let got = 0;
    let head = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      if (mode === 'E') return void s.write(d);
      if (mode === 'T') {
        got += d.length;
        if (got >= want) s.write('k');
        return;
      }
      head = Buffer.concat([head, d]);
      if (head[0] === 0x45) {
        mode = 'E';
        s.write(head);
      } else if (head.length >= 9) {
        mode = 'T';
        want = Number(head.readBigUInt64BE(1));
        got = head.length - 9;
        if (got >= want) s.write('k');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.2', r));
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

async function connect(port: number, host = '127.0.0.1'): Promise<net.Socket> {
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
    if (!s.write(sent + chunk.length > bytes ? chunk.subarray(0, bytes - sent) : chunk)) await new Promise((r) => s.once('drain', r));
  }
  await done;
  const seconds = (performance.now() - start) / 1000;
  s.destroy();
  return bytes / seconds;
}

/** New-connection latency: connect, send one byte, until it comes back. Sequential, as a client would. */
let failed = 0;

async function shortConnections(port: number, host: string, count: number): Promise<number[]> {
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

async function waitListening(port: number, host: string): Promise<void> {
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

async function staticEnvoy(template: string, vars: Record<string, string | number>) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-envoy-'));
  let text = fs.readFileSync(path.join(benchDir, 'static', template), 'utf8');
  for (const [k, v] of Object.entries(vars)) text = text.replaceAll(`\${${k}}`, String(v));
  fs.writeFileSync(path.join(dir, 'envoy.yaml'), text);
  const child = spawn(envoyBinary(), ['-c', path.join(dir, 'envoy.yaml'), '--concurrency', '1', '--disable-hot-restart', '-l', 'error', '--base-id-path', path.join(dir, 'base-id'), '--use-dynamic-base-id'], { stdio: 'ignore' });
  return { stop: () => child.kill('SIGTERM') };
}

/** One way to the backend and what was measured through it. */
interface Path {
  port: number;
  host: string;
  bps: number[];
  latency: number[];
  /** Connections that closed or timed out before their byte came back. */
  failed: number;
}

const newPath = (port: number, host: string): Path => ({ port, host, bps: [], latency: [], failed: 0 });

/**
 * Every path is set up first and measured in rounds, taking turns (plain, shim, static, per
 * connection), so a change in the machine's load hits them all alike; throughput is the median of the
 * rounds, latency pools every round's connections.
 */
async function measureInTurns(paths: Path[], bytes: number, count: number, rounds: number): Promise<void> {
  for (const p of paths) {
    await waitListening(p.port, p.host);
    await shortConnections(p.port, p.host, 20); // warm pools and caches
  }
  for (let r = 0; r < rounds; r++) {
    for (const p of paths) {
      p.bps.push(await throughput(p.port, p.host, Math.round(bytes / rounds)));
      failed = 0;
      p.latency.push(...(await shortConnections(p.port, p.host, Math.round(count / rounds))));
      p.failed += failed;
    }
  }
}

const median = (xs: number[]) => percentile(xs, 50);

export async function runDataPlane(scale: number): Promise<Row[]> {
  const bytes = Math.max(64, Math.round(512 * scale)) << 20;
  const count = Math.max(100, Math.round(1000 * scale));
  const rounds = 5;
  const be = await backend();
  const authority = 'echo.bench.svc.cluster.local:7000';
  const log = (s: string) => process.stderr.write(`bench: data plane: ${s}\n`);

  // (a) plain TCP
  const plain = newPath(be.port, '127.0.0.2');

  // (b) configured by the shim
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-shim-'));
  const appPort = await freePort();
  const tunnelPort = await freePort('127.0.0.2');
  fs.writeFileSync(path.join(dir, 'echo.yaml'), serviceYaml({ name: 'echo', namespace: 'bench', clusterIP: '10.96.0.10', port: appPort, annotations: { 'tunnel-shim.io/tunnel-port': String(tunnelPort) }, endpoints: [{ ip: '127.0.0.2', port: be.port }] }));
  const shim = new Shim({ source: new FileSource(dir), xdsAddress: '127.0.0.1:0', adminAddress: '127.0.0.1:0', logger: pino({ level: 'silent' }) });
  await shim.start();
  const xds = `127.0.0.1:${shim.xdsPort}`;
  const envoys = await Promise.all([
    startEnvoy({ role: 'terminate', nodeId: 'bench-t', xdsAddress: xds, listenAddress: '127.0.0.2', concurrency: 1 }),
    startEnvoy({ role: 'originate', nodeId: 'bench-o', xdsAddress: xds, listenAddress: '127.0.0.1', concurrency: 1 }),
  ]);
  const shimmed = newPath(appPort, '127.0.0.1');

  // (c) the same tunnel, static
  const vars = { APP_PORT: await freePort(), TUNNEL_PORT: await freePort('127.0.0.2'), BACKEND_PORT: be.port, AUTHORITY: authority };
  const st = [await staticEnvoy('tunnel-terminate.yaml', vars), await staticEnvoy('tunnel-originate.yaml', vars)];
  const stat = newPath(vars.APP_PORT, '127.0.0.1');

  // (d) per-connection tcp_proxy
  const tvars = { APP_PORT: await freePort(), TUNNEL_PORT: await freePort('127.0.0.2'), BACKEND_PORT: be.port };
  const tp = [await staticEnvoy('tcp-terminate.yaml', tvars), await staticEnvoy('tcp-originate.yaml', tvars)];
  const tcp = newPath(tvars.APP_PORT, '127.0.0.1');

  await measureInTurns([plain, shimmed, stat, tcp], bytes, count, rounds);
  const upstreamCx = await envoys[1]!.stat(`cluster.originate/bench/echo/${appPort}.upstream_cx_total`);
  log(`${rounds} rounds done; the shim's tunnel carried ${count + 20} app connections over ${upstreamCx} upstream connection(s)`);
  await Promise.all(envoys.map((e) => e.stop()));
  await shim.stop();
  for (const e of [...st, ...tp]) e.stop();
  be.close();

  const g = (bps: number) => ((bps * 8) / 1e9).toFixed(2);
  const gbit = (f: Path) => `${g(median(f.bps))} (${g(Math.min(...f.bps))}-${g(Math.max(...f.bps))}) Gbit/s`;
  const lat = (f: Path) => `${percentile(f.latency, 50).toFixed(2)} / ${percentile(f.latency, 99).toFixed(2)} ms${f.failed ? ` (${f.failed} failed)` : ''}`;
  return [
    ['data plane, 1 TCP connection', `throughput (median of ${rounds} x ${Math.round(bytes / rounds) >> 20} MiB, in turns): plain / shim tunnel / static tunnel`, `${gbit(plain)} / ${gbit(shimmed)} / ${gbit(stat)}`, 'report', ''],
    ['data plane, 1 TCP connection', 'ratio shim/plain; shim/static', `${(median(shimmed.bps) / median(plain.bps)).toFixed(2)}; ${(median(shimmed.bps) / median(stat.bps)).toFixed(2)}`, 'shim >= static', median(shimmed.bps) >= median(stat.bps) ? 'met' : 'MISSED'],
    [`data plane, ${count} short connections`, 'new-connection p50 / p99: pooled shim tunnel', lat(shimmed), 'report', ''],
    [`data plane, ${count} short connections`, 'new-connection p50 / p99: per-connection tcp_proxy', lat(tcp), 'pooled <= per-conn', percentile(shimmed.latency, 50) <= percentile(tcp.latency, 50) && percentile(shimmed.latency, 99) <= percentile(tcp.latency, 99) ? 'met' : 'MISSED'],
    [`data plane, ${count} short connections`, 'new-connection p50 / p99: static tunnel; plain TCP', `${lat(stat)}; ${lat(plain)}`, 'report', ''],
  ];
}
