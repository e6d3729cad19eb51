// How a cut tunnel reaches the application: as a reset (ECONNRESET) where Envoy 1.40 propagates one,
// as a FIN where it does not (README "How a cut tunnel ends"). The originator is a real Envoy in every
// case; the far side is a real terminator, except for the one case no Envoy terminator produces: a
// peer that aborts the CONNECT stream with RST_STREAM (a node:http2 server standing in for it). The
// FIN cases are asserted too, so that an Envoy that starts resetting there fails this test and the
// README gets updated.
import http2 from 'node:http2';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEnvoy, type EnvoyProcess } from '../helpers/envoy.js';
import { freePort } from '../helpers/net.js';
import { serviceYaml } from '../helpers/objects.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { sleep, waitFor } from '../helpers/wait.js';

let shim: TestShim;
let originator: EnvoyProcess;
let terminator: EnvoyProcess;
let backend: net.Server;
let aborter: http2.Http2Server;
const backendSockets = new Set<net.Socket>();
const backendEnds: string[] = [];
const port: Record<string, number> = {};

/** How a socket ended: `ECONNRESET` (a reset) or `FIN` (a clean end), or `open` after 5 s. */
function ending(socket: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    socket.on('data', () => {});
    socket.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    socket.on('end', () => resolve('FIN'));
    setTimeout(() => resolve('open'), 5000);
  });
}

/** An app connection through the tunnel whose bytes reached the backend (or the aborting peer). */
async function tunnel(name: string): Promise<{ socket: net.Socket; ended: Promise<string> }> {
  const socket = net.connect(port[name]!, '127.0.0.1');
  const ended = ending(socket);
  socket.write('hello\n');
  const first = await Promise.race([new Promise((r) => socket.once('data', () => r('data'))), ended]);
  if (first !== 'data') throw new Error(`the tunnel ended before any byte came back: ${String(first)}`);
  return { socket, ended };
}

beforeAll(async () => {
  backend = net.createServer((s) => {
    backendSockets.add(s);
    backendEnds.push('open');
    const i = backendEnds.length - 1;
    ending(s).then((how) => (backendEnds[i] = how));
    s.on('close', () => backendSockets.delete(s));
    s.on('data', (d) => s.write(d));
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.2', r));
  // The stand-in peer: answers the CONNECT, echoes the first bytes, then aborts the stream.
  const abortPort = await freePort('127.0.0.3');
  aborter = http2.createServer();
  aborter.on('stream', (stream) => {
    stream.on('error', () => {});
    stream.respond({ ':status': 200 });
    stream.once('data', (d) => {
      stream.write(d);
      setTimeout(() => stream.destroy(new Error('aborted by the peer')), 100);
    });
  });
  await new Promise<void>((r) => aborter.listen(abortPort, '127.0.0.3', r));
  const tunnelPort = await freePort();
  for (const name of ['cut', 'aborted']) port[name] = await freePort();
  shim = await startShim({
    'cut.yaml': serviceYaml({
      name: 'cut',
      namespace: 'e2e',
      clusterIP: '10.96.5.1',
      port: port.cut!,
      annotations: { 'tunnel-shim.io/tunnel-port': String(tunnelPort) },
      endpoints: [{ ip: '127.0.0.2', port: (backend.address() as net.AddressInfo).port }],
    }),
    'aborted.yaml': serviceYaml({
      name: 'aborted',
      namespace: 'e2e',
      clusterIP: '10.96.5.2',
      port: port.aborted!,
      annotations: { 'tunnel-shim.io/tunnel-port': String(abortPort) },
      endpoints: [{ ip: '127.0.0.3', port: 9 }],
    }),
  });
  [terminator, originator] = await Promise.all([
    startEnvoy({
      role: 'terminate',
      nodeId: 'rst-terminator',
      xdsAddress: shim.xdsAddress,
      listenAddress: '127.0.0.2',
    }),
    startEnvoy({
      role: 'originate',
      nodeId: 'rst-originator',
      xdsAddress: shim.xdsAddress,
      listenAddress: '127.0.0.1',
    }),
  ]);
  await waitFor(
    'the tunnel',
    () =>
      tunnel('cut').then(
        (t) => (t.socket.destroy(), true),
        () => false,
      ),
    20_000,
    200,
  );
}, 60_000);

afterAll(async () => {
  await Promise.all([originator?.stop(), terminator?.stop()]);
  await shim?.stop();
  for (const s of backendSockets) s.destroy();
  await new Promise((r) => backend?.close(r));
  await new Promise((r) => aborter?.close(r));
});

// Envoy 1.40 counts CONNECT_ERROR and the end of the whole pooled connection as possibly local: a FIN.
describe('a cut tunnel, as the application sees it', () => {
  it('a peer aborts the CONNECT stream (RST_STREAM INTERNAL_ERROR): the app gets ECONNRESET', async () => {
    const { ended } = await tunnel('aborted');
    expect(await ended).toBe('ECONNRESET');
  });

  it('the backend resets: the terminator answers CONNECT_ERROR, and the app gets a FIN', async () => {
    const { ended } = await tunnel('cut');
    for (const s of backendSockets) s.resetAndDestroy();
    expect(await ended).toBe('FIN');
  });

  it('the app resets: the terminator closes its backend connection with a FIN', async () => {
    const before = backendEnds.length;
    const { socket } = await tunnel('cut');
    socket.resetAndDestroy();
    const ended = () => backendEnds.length > before && backendEnds[before] !== 'open';
    await waitFor('the backend connection to end', ended, 5000, 20);
    expect(backendEnds[before]).toBe('FIN');
  });

  it('the terminator is killed mid-stream: the app gets a FIN', async () => {
    const tunnels = await Promise.all([tunnel('cut'), tunnel('cut')]);
    for (const t of tunnels) t.socket.write('more\n');
    await sleep(100);
    terminator.process.kill('SIGKILL');
    expect(await Promise.all(tunnels.map((t) => t.ended))).toEqual(['FIN', 'FIN']);
  });
});
