// Settings whose proof needs a tunnel peer the shared terminator of settings.test.ts cannot be: a peer
// that sends trailers on its CONNECT response, and a terminator this file alone uses, frozen with
// SIGSTOP. The originator is a real Envoy in both; each test moves bytes and reads Envoy's own stats
// or access logs.
import fs from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEnvoy, type EnvoyProcess } from '../helpers/envoy.js';
import { Client, freePort, roundTrip, startEcho } from '../helpers/net.js';
import { debugNodes } from '../helpers/nodes.js';
import { serviceYaml } from '../helpers/objects.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { sleep, waitFor } from '../helpers/wait.js';

let shim: TestShim;
let originator: EnvoyProcess;
/** Serves only the keepalive Service: it listens on 127.0.0.8 alone (bootstrap --listen-address). */
let frozen: EnvoyProcess;
let peer: TrailerPeer;
let tmp: string;
const closers: (() => Promise<unknown>)[] = [];
const port: Record<string, number> = {};
const log = { trailers: '', noTrailers: '' };

const cluster = (name: string) => `cluster.originate/e2e/${name}/${port[name]}`;

interface TrailerPeer {
  port: number;
  /** Per CONNECT stream: its authority, the bytes it echoed and the trailer it sent. */
  streams: { authority: string; echoed: number; trailer?: string }[];
  close(): Promise<void>;
}

/**
 * A terminating peer that ends every CONNECT response with a trailer. It is not Envoy because an
 * Envoy terminator never sends trailers on a CONNECT response: its upstream is raw TCP, which has no
 * trailers to forward, so it only ever ends the stream with DATA. Node's HTTP/2 server answers the
 * CONNECT with 200 (`waitForTrailers`), echoes the bytes, and when the originator ends its side,
 * ends its own with `x-tunnel-trailer: echoed=N`.
 */
async function startTrailerPeer(host: string): Promise<TrailerPeer> {
  const sessions = new Set<http2.ServerHttp2Session>();
  const server = http2.createServer();
  const result: TrailerPeer = { port: 0, streams: [], close: async () => {} };
  server.on('session', (s) => (sessions.add(s), s.on('close', () => sessions.delete(s))));
  server.on('stream', (stream, headers) => {
    if (headers[':method'] !== 'CONNECT') {
      stream.respond({ ':status': 405 }, { endStream: true });
      return;
    }
    const record: TrailerPeer['streams'][number] = { authority: String(headers[':authority']), echoed: 0 };
    result.streams.push(record);
    stream.respond({ ':status': 200 }, { waitForTrailers: true });
    stream.on('wantTrailers', () => {
      record.trailer = `echoed=${record.echoed}`;
      stream.sendTrailers({ 'x-tunnel-trailer': record.trailer });
    });
    stream.on('data', (d: Buffer) => {
      record.echoed += d.length;
      stream.write(d);
    });
    stream.on('end', () => stream.end());
    stream.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, host, resolve));
  result.port = (server.address() as { port: number }).port;
  result.close = async () => {
    for (const s of sessions) s.destroy();
    await new Promise((r) => server.close(r));
  };
  return result;
}

async function synced(ids: string[]): Promise<boolean> {
  const nodes = await debugNodes(shim.adminUrl);
  return ids.every((id) => {
    const n = nodes.find((x) => x.id === id);
    return n && Object.values(n.types).length >= 2 && Object.values(n.types).every((t) => t.status === 'SYNCED');
  });
}

const lines = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'peers-e2e-'));
  log.trailers = path.join(tmp, 'trailers.log');
  log.noTrailers = path.join(tmp, 'no-trailers.log');
  peer = await startTrailerPeer('127.0.0.7');
  closers.push(() => peer.close());
  const echo = await startEcho('127.0.0.8', 0, 'backend-127.0.0.8');
  closers.push(() => echo.close());
  const keepalivePort = await freePort('127.0.0.8');
  for (const n of ['trailers', 'no-trailers', 'keepalive']) port[n] = await freePort();

  // The originator reaches the peer at its address on the tunnel port; the endpoint port is unused.
  const format =
    'peer %CONNECTION_ID% %UPSTREAM_HOST% %BYTES_SENT% ' +
    'trailers=%FILTER_STATE(envoy.tcp_proxy.propagate_response_trailers:TYPED)%';
  const toPeer = (name: string, clusterIP: string, annotations: Record<string, string>) =>
    serviceYaml({
      name,
      namespace: 'e2e',
      clusterIP,
      port: port[name]!,
      endpoints: [{ ip: '127.0.0.7', port: 9 }],
      annotations: {
        'tunnel-shim.io/tunnel-port': String(peer.port),
        'tunnel-shim.io/access-log-format': format,
        ...annotations,
      },
    });
  shim = await startShim({
    'trailers.yaml': toPeer('trailers', '10.96.3.1', {
      'tunnel-shim.io/propagate-response-trailers': 'true',
      'tunnel-shim.io/access-log': log.trailers,
    }),
    'no-trailers.yaml': toPeer('no-trailers', '10.96.3.2', { 'tunnel-shim.io/access-log': log.noTrailers }),
    'keepalive.yaml': serviceYaml({
      name: 'keepalive',
      namespace: 'e2e',
      clusterIP: '10.96.3.3',
      port: port.keepalive!,
      endpoints: [{ ip: '127.0.0.8', port: echo.port }],
      annotations: {
        'tunnel-shim.io/tunnel-port': String(keepalivePort),
        'tunnel-shim.io/connection-keepalive-interval': '1s',
        'tunnel-shim.io/connection-keepalive-timeout': '1s',
      },
    }),
  });
  [originator, frozen] = await Promise.all([
    startEnvoy({
      role: 'originate',
      nodeId: 'peers-originator',
      xdsAddress: shim.xdsAddress,
      listenAddress: '127.0.0.1',
    }),
    startEnvoy({
      role: 'terminate',
      nodeId: 'peers-terminator',
      xdsAddress: shim.xdsAddress,
      listenAddress: '127.0.0.8',
    }),
  ]);
  await waitFor('both Envoys synced', () => synced(['peers-originator', 'peers-terminator']), 30_000, 100);
  const diagnostics = (await (await fetch(`${shim.adminUrl}/debug/diagnostics`)).json()) as { text: string }[];
  expect(diagnostics.map((d) => d.text)).toEqual([]);
  await waitFor('the keepalive tunnel to work', () => roundTrip(port.keepalive!).then(() => true), 20_000, 200);
});

afterAll(async () => {
  // Never leave an Envoy stopped: a stopped process cannot act on SIGTERM.
  frozen?.process.kill('SIGCONT');
  await Promise.all([originator?.stop(), frozen?.stop()]);
  await shim?.stop();
  await Promise.all(closers.map((c) => c()));
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** One tunnel that the client half-closes, so the peer ends its side (with its trailer) first. */
async function tunnelToPeer(name: string, text: string): Promise<void> {
  const client = await Client.connect(port[name]!);
  await client.echo(text);
  client.socket.end();
  await waitFor(`the ${name} tunnel to close after the peer ended it`, () => client.closed, 5000, 20);
}

describe('2. the tunnel request: propagate-response-trailers', () => {
  it('the originator keeps the CONNECT response trailers in filter state only with the annotation', async () => {
    const text = 'trailers please\n';
    await tunnelToPeer('trailers', text);
    await tunnelToPeer('no-trailers', text);
    // The peer sent a trailer on both tunnels: only the annotation makes the difference.
    expect(peer.streams).toEqual([
      {
        authority: `trailers.e2e.svc.cluster.local:${port.trailers}`,
        echoed: text.length,
        trailer: `echoed=${text.length}`,
      },
      {
        authority: `no-trailers.e2e.svc.cluster.local:${port['no-trailers']}`,
        echoed: text.length,
        trailer: `echoed=${text.length}`,
      },
    ]);
    const kept = await waitFor('the trailers log line', () => lines(log.trailers)[0]);
    const upstream = `127\\.0\\.0\\.7:${peer.port}`;
    expect(kept).toMatch(new RegExp(`^peer \\d+ ${upstream} ${text.length} trailers=\\{`));
    const trailers = JSON.parse(kept.split(' trailers=')[1]!) as { headers: { key: string; value: string }[] };
    expect(trailers.headers).toEqual([{ key: 'x-tunnel-trailer', value: `echoed=${text.length}` }]);
    const dropped = await waitFor('the no-trailers log line', () => lines(log.noTrailers)[0]);
    expect(dropped).toMatch(new RegExp(`^peer \\d+ ${upstream} ${text.length} trailers=-$`));
  });
});

describe('5. pooling: HTTP/2 keepalive notices a dead terminator', () => {
  it(
    'connection-keepalive 1s/1s: a frozen terminator costs the pooled connection within seconds; a new one ' +
      'works after it thaws',
    async () => {
      const client = await Client.connect(port.keepalive!);
      await client.echo('before\n');
      expect(await originator.stat(`${cluster('keepalive')}.upstream_cx_active`)).toBe(1);
      // A live peer answers every PING: three rounds pass without a timeout, and the tunnel still echoes.
      await sleep(3000);
      await client.echo('alive\n');
      expect(await originator.stat(`${cluster('keepalive')}.http2.keepalive_timeout`)).toBe(0);
      const total = await originator.stat(`${cluster('keepalive')}.upstream_cx_total`);

      let noticedAfter = -1;
      frozen.process.kill('SIGSTOP');
      try {
        const stopped = Date.now();
        await waitFor(
          'the keepalive timeout',
          async () => (await originator.stat(`${cluster('keepalive')}.http2.keepalive_timeout`)) >= 1,
          10_000,
          20,
        );
        noticedAfter = Date.now() - stopped;
        await waitFor(
          'the upstream connection to close',
          async () => (await originator.stat(`${cluster('keepalive')}.upstream_cx_active`)) === 0,
          5000,
          20,
        );
        expect(await originator.stat(`${cluster('keepalive')}.upstream_cx_destroy`)).toBeGreaterThanOrEqual(1);
        // The tunnel it carried is closed too, not left hanging on a dead peer.
        await waitFor('the app connection to close', () => client.closed, 5000, 20);
      } finally {
        frozen.process.kill('SIGCONT');
      }
      console.log(`keepalive 1s/1s: frozen terminator noticed after ${noticedAfter} ms`);
      // The next PING goes out within interval (+15% jitter), and its answer is awaited for timeout:
      // 1 s to 2.15 s after the freeze, with room for a busy machine above (the default: 4 s to 9.75 s).
      expect(noticedAfter).toBeGreaterThanOrEqual(900);
      expect(noticedAfter).toBeLessThanOrEqual(5000);

      expect(await roundTrip(port.keepalive!, 'after\n')).toBe('backend-127.0.0.8\nafter\n');
      expect(await originator.stat(`${cluster('keepalive')}.upstream_cx_total`)).toBe(total + 1);
      expect(await originator.stat(`${cluster('keepalive')}.http2.keepalive_timeout`)).toBe(1);
    },
  );
});
