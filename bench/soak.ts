// `make soak` (not in CI): the shim in its own process under a change every 100 ms for SOAK_MINUTES
// (default 30), with 200 ADS streams from the load generator (20 reconnecting every 0.2-1 s, 20 reading
// slowly) and three real Envoys carrying tunnels the whole time:
//   - 20 long-lived tunnels to a Service nothing changes, echoing a line every 100 ms each: none may
//     close or stall (an unrelated change must not cut them);
//   - a new connection every 100 ms to a Service whose endpoint moves between the two terminators
//     every 5 s: none may fail (make-before-break).
// It prints those counts and the shim's RSS after a full GC at minute 5 (or half-way, when shorter)
// and at the end, which may not have grown by more than 10 % (it moves by 10-25 % either way between
// runs while the heap stays flat: glibc and V8 keep freed pages; a drop is not a leak). Bounded: it stops itself
// at SOAK_MINUTES + 5 minutes.
import YAML from 'yaml';
import type { SourcedObject } from '../src/model/objects.js';
import { startEnvoy, type EnvoyProcess } from '../test/helpers/envoy.js';
import { Client, freePort, roundTrip, startEcho, type EchoServer } from '../test/helpers/net.js';
import { serviceYaml } from '../test/helpers/objects.js';
import { Child, sleep } from './child.js';
import { markerAddress, podAddress } from './fixtures.js';
import type { StreamSpec } from './loadgen.js';
import { cpuSeconds } from './proc.js';
import { startShim, type Server } from './servers.js';

const minutes = Number(process.env.SOAK_MINUTES ?? 30);
const services = Number(process.env.SOAK_SERVICES ?? 100);
if (!(minutes > 0 && minutes <= 24 * 60))
  throw new Error(`SOAK_MINUTES must be a number of minutes (got ${process.env.SOAK_MINUTES})`);
const checkpointMinutes = Math.min(5, minutes / 2);
const deadline = setTimeout(
  () => {
    process.stderr.write('soak: past its time bound; stopping\n');
    process.exit(2);
  },
  (minutes + 5) * 60_000,
);

const log = (text: string) => process.stdout.write(`soak: ${text}\n`);
const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
const shortened = minutes < 30 ? ' (shortened from 30 by SOAK_MINUTES)' : '';
const objectsOf = (yaml: string): SourcedObject[] => YAML.parseAllDocuments(yaml).map((d) => ({ object: d.toJSON() }));

function streams(): StreamSpec[] {
  const out: StreamSpec[] = [];
  const behaviour = (i: number) => (i < 10 ? 'reconnect' : i < 20 ? 'slow' : undefined);
  for (let i = 0; i < 100; i++)
    out.push({ id: `soak-o-${i}`, role: 'originate', listenAddress: '127.0.0.1', behaviour: behaviour(i) });
  for (let i = 0; i < 100; i++)
    out.push({ id: `soak-t-${i}`, role: 'terminate', listenAddress: podAddress(i), behaviour: behaviour(i) });
  return out;
}

async function main() {
  const [tunnelPort, steadyPort, moverPort, backendPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort('127.0.0.2'),
  ];
  const backends: EchoServer[] = [await startEcho('127.0.0.2', backendPort), await startEcho('127.0.0.3', backendPort)];
  const annotations = { 'tunnel-shim.io/tunnel-port': String(tunnelPort) };
  const live = (name: string, port: number, ip: string) =>
    objectsOf(
      serviceYaml({
        name,
        namespace: 'soak',
        clusterIP: name === 'steady' ? '10.99.0.1' : '10.99.0.2',
        port,
        annotations,
        endpoints: [{ ip, port: backendPort }],
      }),
    );

  const server: Server = await startShim(services);
  server.set!({ steady: live('steady', steadyPort, '127.0.0.2'), mover: live('mover', moverPort, '127.0.0.2') });
  const envoys: EnvoyProcess[] = await Promise.all([
    startEnvoy({
      role: 'originate',
      nodeId: 'soak-originator',
      xdsAddress: server.xds,
      listenAddress: '127.0.0.1',
      concurrency: 2,
    }),
    startEnvoy({ role: 'terminate', nodeId: 'soak-terminator-2', xdsAddress: server.xds, listenAddress: '127.0.0.2' }),
    startEnvoy({ role: 'terminate', nodeId: 'soak-terminator-3', xdsAddress: server.xds, listenAddress: '127.0.0.3' }),
  ]);
  for (const port of [steadyPort, moverPort]) {
    for (let i = 0; ; i++) {
      if (
        await roundTrip(port).then(
          () => true,
          () => false,
        )
      )
        break;
      if (i > 200) throw new Error(`the tunnel on port ${port} never worked`);
      await sleep(100);
    }
  }
  const gen = new Child('loadgen.ts');
  await gen.next('ready');
  await gen.ask(
    { cmd: 'connect', address: server.xds, delta: false, streams: streams(), trackMarkers: false },
    'connected',
  );
  await sleep(5000);
  log(`${services} Services + 2 live ones, 200 ADS streams (20 reconnecting, 20 slow readers), 3 Envoys`);
  log(`running ${minutes} min${shortened}`);

  // 20 long-lived tunnels on the Service nothing changes.
  const steady = await Promise.all(Array.from({ length: 20 }, () => Client.connect(steadyPort)));
  const steadyErrors: string[] = [];
  let running = true;
  let rounds = 0;
  const echoing = (async () => {
    while (running) {
      await Promise.all(
        steady.map((t, i) =>
          t.closed
            ? undefined
            : t
                .echo(`steady ${i} ${rounds}\n`, 10_000)
                .catch((err: Error) => void steadyErrors.push(`tunnel ${i}: ${err.message}`)),
        ),
      );
      rounds++;
      await sleep(100);
    }
  })();

  // A new connection every 100 ms to the Service that moves.
  let opened = 0;
  const failed: string[] = [];
  const inFlight = new Set<Promise<void>>();
  const connections = setInterval(() => {
    opened++;
    const p = roundTrip(moverPort).then(
      () => undefined,
      (err: Error) => void failed.push(`${new Date().toISOString()} ${err.message}`),
    );
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  }, 100);

  const progress = () =>
    `${changes} changes, ${opened} connections (${failed.length} failed), ` +
    `steady tunnels: ${steadyErrors.length} echo errors, ${steady.filter((t) => t.closed).length} closed`;

  // A change every 100 ms (an endpoint of one of the Services moves to a new address) and the mover's
  // endpoint to the other terminator every 5 s.
  let changes = 0;
  let moves = 0;
  const changer = setInterval(async () => {
    const k = changes++;
    (await server.prepare((k * 37) % services, markerAddress(k % 60000)))();
    if (k % 50 === 49) server.set!({ mover: live('mover', moverPort, ++moves % 2 ? '127.0.0.3' : '127.0.0.2') });
  }, 100);

  const afterGc = async () => {
    await server.collect!();
    return server.stats!();
  };
  const started = Date.now();
  const cpuAtStart = cpuSeconds(server.pid);
  await sleep(checkpointMinutes * 60_000);
  const { rss: rssCheckpoint, heapUsed: heapCheckpoint, external: externalCheckpoint } = await afterGc();
  const checkpoint = `${mb(rssCheckpoint)} MB (heap ${mb(heapCheckpoint)} MB)`;
  log(`minute ${checkpointMinutes}: shim RSS after GC ${checkpoint}; ${progress()}`);
  while (Date.now() - started < minutes * 60_000) {
    await sleep(Math.min(60_000, minutes * 60_000 - (Date.now() - started)));
    log(`minute ${((Date.now() - started) / 60_000).toFixed(1)}: ${progress()}`);
  }
  clearInterval(changer);
  clearInterval(connections);
  running = false;
  await echoing;
  await Promise.all([...inFlight]);
  const shimCpu = (cpuSeconds(server.pid) - cpuAtStart) / ((Date.now() - started) / 1000);
  const { rss: rssEnd, heapUsed: heapEnd, external: externalEnd } = await afterGc();
  const closed = steady.filter((t) => t.closed).length;
  const { count: reconnects } = await gen.ask({ cmd: 'reconnects' }, 'reconnects');
  const metrics = (await server.metrics!())
    .split('\n')
    .filter((l) => /^tunnel_shim_rollout_(timeouts_total|hold_seconds_(count|sum))/.test(l));
  await gen.ask({ cmd: 'close' }, 'closed');
  for (const t of steady) t.close();
  await Promise.all(envoys.map((e) => e.stop()));
  await server.stop();
  await Promise.all(backends.map((b) => b.close()));

  const growth = (rssEnd - rssCheckpoint) / rssCheckpoint;
  const took = ((Date.now() - started) / 60_000).toFixed(1);
  log(`done after ${took} min${shortened}: ${changes} changes, ${moves} moves of the live Service`);
  log(`${reconnects} stream reconnects; shim CPU ${(shimCpu * 100).toFixed(0)} % of a core on average`);
  log(
    `failed tunnel connections: ${failed.length} of ${opened}${failed
      .map((f) => `\n  ${f}`)
      .slice(0, 20)
      .join('')}`,
  );
  const errors = steadyErrors.slice(0, 5).join('; ');
  const echo = `${steadyErrors.length} echo errors${errors && `: ${errors}`}`;
  log(`tunnels closed by an unrelated change: ${closed} of 20 (${echo})`);
  const percent = `${growth >= 0 ? '+' : ''}${(growth * 100).toFixed(1)} %`;
  log(`shim RSS after GC: minute ${checkpointMinutes} ${mb(rssCheckpoint)} MB, end ${mb(rssEnd)} MB (${percent})`);
  const external = `${mb(externalCheckpoint)} -> ${mb(externalEnd)} MB`;
  log(`shim heap after GC: ${mb(heapCheckpoint)} -> ${mb(heapEnd)} MB; external ${external}`);
  log(`make-before-break: ${metrics.join(', ')}`);
  clearTimeout(deadline);
  const ok = failed.length === 0 && closed === 0 && steadyErrors.length === 0 && growth <= 0.1;
  log(ok ? 'PASS' : 'FAIL');
  process.exit(ok ? 0 : 1);
}

main().catch((err) => {
  process.stderr.write(`soak: ${(err as Error).stack}\n`);
  process.exit(1);
});
