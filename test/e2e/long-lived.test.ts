// A tunnel that sits idle longer than Envoy's HTTP route timeout (15 s by default) is not cut: the
// terminator's route timeout and stream idle timeout are off for CONNECT routes.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startEnvoy, type EnvoyProcess } from '../helpers/envoy.js';
import { Client, freePort, roundTrip, startEcho, type EchoServer } from '../helpers/net.js';
import { serviceYaml } from '../helpers/objects.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { sleep, waitFor } from '../helpers/wait.js';

let shim: TestShim;
let envoys: EnvoyProcess[] = [];
let echo: EchoServer;
let port: number;
let tunnelPort: number;

beforeAll(async () => {
  echo = await startEcho('127.0.0.2', 0);
  port = await freePort();
  tunnelPort = await freePort();
  shim = await startShim({
    'svc.yaml': serviceYaml({
      name: 'idle',
      namespace: 'e2e',
      port,
      annotations: { 'tunnel-shim.io/tunnel-port': String(tunnelPort) },
      endpoints: [{ ip: '127.0.0.2', port: echo.port }],
    }),
  });
  envoys = await Promise.all([
    startEnvoy({
      role: 'terminate',
      nodeId: 'idle-terminator',
      xdsAddress: shim.xdsAddress,
      listenAddress: '127.0.0.2',
    }),
    startEnvoy({
      role: 'originate',
      nodeId: 'idle-originator',
      xdsAddress: shim.xdsAddress,
      listenAddress: '127.0.0.1',
    }),
  ]);
  await waitFor('the tunnel', () => roundTrip(port).then(() => true), 20_000, 100);
});

afterAll(async () => {
  await Promise.all(envoys.map((e) => e.stop()));
  await shim?.stop();
  await echo?.close();
});

it('keeps an idle tunnel open past the 15 s default route timeout', async () => {
  const client = await Client.connect(port);
  await client.echo('start\n');
  await sleep(16_500);
  expect(client.closed).toBe(false);
  await client.echo('still here\n');
  client.close();
  const terminator = envoys[0]!;
  expect(await terminator.stat(`http.terminate_${tunnelPort}.downstream_rq_idle_timeout`)).toBe(0);
  expect(await terminator.stat(`http.terminate_${tunnelPort}.downstream_rq_total`)).toBeGreaterThanOrEqual(2);
}, 40_000);
