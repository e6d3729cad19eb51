// The paths of the mTLS data-plane benchmark (dataplane-mtls.ts): the shim's pooled mTLS tunnel and
// the static per-connection mTLS tcp_proxy (with and without TLS session resumption) to one backend,
// each Envoy as its process (for CPU) and its TLS counters.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Shim } from '../src/shim.js';
import { FileSource } from '../src/sources/file.js';
import { issue, testCa } from '../test/helpers/certs.js';
import { startEnvoy } from '../test/helpers/envoy.js';
import { freePort } from '../test/helpers/net.js';
import type { Netns } from '../test/helpers/netns.js';
import { serviceYaml } from '../test/helpers/objects.js';
import { sleep } from './child.js';
import { staticEnvoy as plainStaticEnvoy } from './dataplane.js';

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

/** A hand-written Envoy (dataplane.ts) whose template has an admin listener, for its stats. */
async function staticEnvoy(template: string, vars: Record<string, string | number>, prefix: string[] = []) {
  const { child, adminFile, stop } = await plainStaticEnvoy(template, vars, prefix);
  const address = () => (fs.existsSync(adminFile) ? fs.readFileSync(adminFile, 'utf8').trim() : '');
  for (let i = 0; i < 200 && !address(); i++) {
    if (child.exitCode !== null) throw new Error(`static Envoy ${template} exited with ${child.exitCode}`);
    await sleep(50);
  }
  if (!address()) throw new Error(`static Envoy ${template}: no admin address within 10 s`);
  // `ip netns exec` execs Envoy: the pid is Envoy's.
  const side: Side = { pid: child.pid!, counters: () => counters(`http://${address()}`) };
  return { side, stop };
}

/** One way through two Envoys, and what was measured through it. */
export interface Path {
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

export interface Far {
  address: string;
  backendPort: number;
  netns?: Netns;
  xdsHost: string;
}

/** The pooled mTLS tunnel (shim) and the per-connection mTLS tcp_proxy (static) to the far backend. */
export async function setUp(far: Far) {
  const stops: (() => unknown)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s();
  };
  try {
    const ca = await testCa();
    const [client, server] = await Promise.all([issue(ca, 'bench/client'), issue(ca, 'bench/server')]);
    const farPort = () => freePort(far.netns ? '127.0.0.1' : far.address);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-mtls-'));
    stops.push(() => fs.rmSync(dir, { recursive: true, force: true })); // it holds private keys
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
    const certDir = path.join(dir, 'files');
    fs.mkdirSync(certDir);
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
export async function tlsCounters(p: Path) {
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

export interface Paths {
  pooled: Path;
  perConn: Path;
  perConnFull: Path;
}
