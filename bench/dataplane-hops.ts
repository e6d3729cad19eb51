// Why, on loopback and in plaintext, a new connection through the pooled tunnel is slower than
// through a per-connection tcp_proxy: the same figure split by hop, with the static configs of
// dataplane.ts. The terminator alone (a client speaking straight to it: TCP for the tcp_proxy, a
// CONNECT stream on one long-lived HTTP/2 connection for the tunnel, as an originator would), then
// both Envoys; what the originator adds is the difference. On loopback a TCP handshake is done by
// the kernel without waking the terminator, while a CONNECT is a round trip through both Envoys'
// event loops (HEADERS out, the terminator connects the backend, 200 back) before the first byte
// may follow it.
import http2 from 'node:http2';
import { backend } from './backend.js';
import { percentile } from './child.js';
import { shortConnections, staticEnvoy, waitListening } from './dataplane.js';
import { freePort } from '../test/helpers/net.js';

type Row = [string, string, string, string, string];

/** CONNECT on one open HTTP/2 connection, then one echoed byte: the time to the 200, and to the byte. */
async function connectStreams(port: number, authority: string, count: number) {
  const session = http2.connect(`http://127.0.0.2:${port}`);
  session.on('error', () => {});
  const toResponse: number[] = [];
  const toByte: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const start = performance.now();
      const stream = session.request({ ':method': 'CONNECT', ':authority': authority });
      const ok = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 5000);
        stream.once('response', (h) => {
          if (h[':status'] !== 200) return (clearTimeout(timer), resolve(false));
          toResponse.push(performance.now() - start);
          stream.write('E');
        });
        stream.once('data', () => (clearTimeout(timer), resolve(true)));
        stream.once('error', () => (clearTimeout(timer), resolve(false)));
      });
      stream.destroy();
      if (ok) toByte.push(performance.now() - start);
    }
  } finally {
    session.destroy();
  }
  return { toResponse, toByte };
}

export async function hops(count: number, rounds: number): Promise<Row[]> {
  const be = await backend();
  const stops: (() => unknown)[] = [];
  const authority = 'echo.bench.svc.cluster.local:7000';
  const common = { TUNNEL_ADDRESS: '127.0.0.2', BACKEND_ADDRESS: '127.0.0.2', BACKEND_PORT: be.port };
  const tunnel = {
    ...common,
    APP_PORT: await freePort(),
    TUNNEL_PORT: await freePort('127.0.0.2'),
    AUTHORITY: authority,
  };
  const tcp = { ...common, APP_PORT: await freePort(), TUNNEL_PORT: await freePort('127.0.0.2') };
  const got = { plain: [], tcpT: [], tcpOT: [], connectT: [], tunnelT: [], tunnelOT: [] } as Record<string, number[]>;
  try {
    for (const [template, vars] of [
      ['tunnel-terminate.yaml', tunnel],
      ['tunnel-originate.yaml', tunnel],
      ['tcp-terminate.yaml', tcp],
      ['tcp-originate.yaml', tcp],
    ] as const)
      stops.push((await staticEnvoy(template, vars)).stop);
    for (const [port, host] of [
      [tunnel.APP_PORT, '127.0.0.1'],
      [tcp.APP_PORT, '127.0.0.1'],
      [tcp.TUNNEL_PORT, '127.0.0.2'],
    ] as const) {
      await waitListening(port, host);
      await shortConnections(port, host, 20);
    }
    await connectStreams(tunnel.TUNNEL_PORT, authority, 20);
    const n = Math.round(count / rounds);
    for (let r = 0; r < rounds; r++) {
      got.plain!.push(...(await shortConnections(be.port, '127.0.0.2', n)));
      got.tcpT!.push(...(await shortConnections(tcp.TUNNEL_PORT, '127.0.0.2', n)));
      const streams = await connectStreams(tunnel.TUNNEL_PORT, authority, n);
      got.connectT!.push(...streams.toResponse);
      got.tunnelT!.push(...streams.toByte);
      got.tcpOT!.push(...(await shortConnections(tcp.APP_PORT, '127.0.0.1', n)));
      got.tunnelOT!.push(...(await shortConnections(tunnel.APP_PORT, '127.0.0.1', n)));
    }
  } finally {
    for (const s of stops.reverse()) await s();
    be.close();
  }
  const p50 = (k: string) => percentile(got[k]!, 50);
  const f = (x: number) => x.toFixed(2);
  const scenario = `data plane by hop, plaintext loopback, ${count} short connections`;
  return [
    [
      scenario,
      'p50: no proxy; terminator alone: tcp_proxy (TCP) / tunnel (CONNECT on an open HTTP/2 conn; to its 200)',
      `${f(p50('plain'))}; ${f(p50('tcpT'))} / ${f(p50('tunnelT'))} (${f(p50('connectT'))}) ms`,
      'report',
      '',
    ],
    [
      scenario,
      'p50: both Envoys, per-connection / pooled; what the originator adds, per-connection / pooled',
      `${f(p50('tcpOT'))} / ${f(p50('tunnelOT'))}; ${f(p50('tcpOT') - p50('tcpT'))} / ` +
        `${f(p50('tunnelOT') - p50('tunnelT'))} ms`,
      'report',
      '',
    ],
  ];
}
