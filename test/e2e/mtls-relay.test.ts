// A relay chain with mTLS on the relay's hop: caller (plaintext HTTP/2 CONNECT) → relay → (mTLS,
// the relay's own certificate) → terminator → backend. The terminator logs the relay's SPIFFE ID.
import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issue, testCa, type TestIdentity } from '../helpers/certs.js';
import { startEnvoy, type EnvoyProcess } from '../helpers/envoy.js';
import { freePort, startEcho, type EchoServer } from '../helpers/net.js';
import { serviceYaml } from '../helpers/objects.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { waitFor } from '../helpers/wait.js';

/** CONNECT through the relay, send a line, resolve with what came back. */
function connectThrough(port: number, authority: string, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const timer = setTimeout(
      () => (session.destroy(), reject(new Error(`no echo (got ${JSON.stringify(got)})`))),
      5000,
    );
    let got = '';
    session.on('error', (e) => (clearTimeout(timer), reject(e)));
    const stream = session.request({ ':method': 'CONNECT', ':authority': authority });
    stream.on('response', (h) => {
      if (h[':status'] !== 200)
        return (clearTimeout(timer), session.close(), reject(new Error(`status ${h[':status']}`)));
      stream.write(line);
    });
    stream.on('data', (d: Buffer) => {
      got += d.toString();
      if (!got.includes(line)) return;
      clearTimeout(timer);
      session.destroy();
      resolve(got);
    });
    stream.on('error', () => {});
  });
}

describe('relay chain with mTLS on the relay hop', () => {
  let shim: TestShim;
  let relay: EnvoyProcess;
  let terminator: EnvoyProcess;
  let backend: EchoServer;
  let relayId: TestIdentity;
  let relayPort: number;
  let authority: string;

  beforeAll(async () => {
    const ca = await testCa();
    const [r, server] = await Promise.all([issue(ca, 'e2e/relay'), issue(ca, 'e2e/server')]);
    relayId = r;
    backend = await startEcho('127.0.0.2', await freePort('127.0.0.2'), 'chain');
    relayPort = await freePort();
    const port = await freePort();
    authority = `chain.e2e.svc.cluster.local:${port}`;
    shim = await startShim(
      {
        'chain.yaml': serviceYaml({
          name: 'chain',
          namespace: 'e2e',
          port,
          annotations: {
            'tunnel-shim.io/tunnel-port': String(await freePort('127.0.0.2')),
            'tunnel-shim.io/relay-port': String(relayPort),
            'tunnel-shim.io/mtls': 'strict',
            'tunnel-shim.io/allowed-identities': relayId.id,
          },
          endpoints: [{ ip: '127.0.0.2', port: backend.port }],
        }),
        'certs.yaml': [relayId.yaml, server.yaml].join('---\n'),
      },
      { tls: { insecureIdentities: true } },
    );
    [relay, terminator] = await Promise.all([
      startEnvoy({
        role: 'relay',
        nodeId: 'relay',
        xdsAddress: shim.xdsAddress,
        listenAddress: '127.0.0.1',
        identity: 'e2e/relay',
      }),
      startEnvoy({ role: 'terminate', nodeId: 'terminator', xdsAddress: shim.xdsAddress, identity: 'e2e/server' }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([relay?.stop(), terminator?.stop()]);
    await shim?.stop();
    await backend?.close();
  });

  it('carries bytes caller → relay → terminator, mTLS on the relay hop, the relay identity logged', async () => {
    const got = await waitFor(
      'bytes through the relay',
      () => connectThrough(relayPort, authority, 'via relay\n'),
      30_000,
      300,
    );
    expect(got).toBe('chain\nvia relay\n');
    const entry = await waitFor('terminator log', () =>
      terminator.accessLog().find((e) => e.authority === authority && e.response_code === 200),
    );
    expect(entry.peer_identity).toBe(relayId.id);
    let handshakes = 0;
    for (const [name, value] of await relay.stats())
      if (/^cluster\.relay\/e2e\/chain\/\d+\.ssl\.handshake$/.test(name)) handshakes += value;
    expect(handshakes).toBeGreaterThan(0);
  });
});
