// Large input files cannot stall the shim: a file over the size limit is refused with an error naming
// it while everything else keeps serving; a large but allowed folder is parsed off the event loop, so
// /healthz answers throughout; and SIGTERM in the middle of such a parse still ends `serve` within 5 s.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveArgs, spawnCli } from '../helpers/cli.js';
import { startEnvoy, type EnvoyProcess } from '../helpers/envoy.js';
import { freePort, roundTrip, startEcho, type EchoServer } from '../helpers/net.js';
import { serviceYaml } from '../helpers/objects.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { sleep, waitFor } from '../helpers/wait.js';

const MiB = 1024 * 1024;
let shim: TestShim;
let originator: EnvoyProcess;
let terminator: EnvoyProcess;
let echo: EchoServer;
let tunnelPort: number;

/** About `mib` MiB of ConfigMaps (kinds the model does not read: the cost is all parsing) and one Service. */
function bulkYaml(mib: number, tag: string): string {
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < mib * MiB; i++) {
    const data = Array.from({ length: 20 }, (_, k) => `  key-${k}: "value ${i} ${k} ${'x'.repeat(20)}"\n`).join('');
    const doc = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${tag}-${i}\n  namespace: bulk\ndata:\n${data}`;
    parts.push(doc);
    size += doc.length;
  }
  return parts.join('---\n');
}

const serviceFile = (name: string, port: number) =>
  serviceYaml({
    name,
    namespace: 'big',
    clusterIP: '10.96.10.1',
    port,
    annotations: { 'tunnel-shim.io/tunnel-port': String(tunnelPort) },
    endpoints: [{ ip: '127.0.0.2', port: echo.port }],
  });

async function diagnostics(adminUrl: string): Promise<string[]> {
  return ((await (await fetch(`${adminUrl}/debug/diagnostics`)).json()) as { text: string }[]).map((d) => d.text);
}

let firstPort: number;

beforeAll(async () => {
  [tunnelPort, firstPort] = [await freePort(), await freePort()];
  echo = await startEcho('127.0.0.2', await freePort('127.0.0.2'), 'backend');
  shim = await startShim({ 'first.yaml': serviceFile('first', firstPort) });
  [originator, terminator] = await Promise.all([
    startEnvoy({ role: 'originate', nodeId: 'originator', xdsAddress: shim.xdsAddress, listenAddress: '127.0.0.1' }),
    startEnvoy({ role: 'terminate', nodeId: 'terminator', xdsAddress: shim.xdsAddress }),
  ]);
  await waitFor(
    'the first tunnel',
    () =>
      roundTrip(firstPort).then(
        () => true,
        () => false,
      ),
    20_000,
    100,
  );
});

afterAll(async () => {
  await Promise.all([originator?.stop(), terminator?.stop()]);
  await shim?.stop();
  await echo?.close();
});

describe('file size limits', () => {
  it(
    'a file over 8 MiB is refused with an error naming it; the other files keep being served and ' + 'reloaded',
    async () => {
      fs.writeFileSync(path.join(shim.dir, 'huge.yaml'), bulkYaml(9, 'huge'));
      const size = fs.statSync(path.join(shim.dir, 'huge.yaml')).size;
      const expected =
        `error: ${shim.dir}/huge.yaml: is ${Number((size / MiB).toFixed(1))} MiB, over the limit ` +
        `of 8 MiB per file (serve --max-file-size); it is not read`;
      await waitFor('the size error', async () => (await diagnostics(shim.adminUrl)).includes(expected), 10_000);
      expect(await roundTrip(firstPort)).toMatch(/^backend\n/);
      const secondPort = await freePort();
      shim.write('second.yaml', serviceFile('second', secondPort));
      await waitFor(
        'a Service added beside the refused file',
        () =>
          roundTrip(secondPort).then(
            () => true,
            () => false,
          ),
        20_000,
        100,
      );
      fs.rmSync(path.join(shim.dir, 'huge.yaml'));
      fs.rmSync(path.join(shim.dir, 'second.yaml'));
      await waitFor('the error to clear', async () => (await diagnostics(shim.adminUrl)).length === 0, 10_000);
    },
  );

  it('/healthz answers promptly while a large but allowed folder (2 x 7 MiB) is parsed', async () => {
    // The Service at the end of the second file tells when both are parsed.
    const [a, b] = [bulkYaml(7, 'a'), `${bulkYaml(7, 'b')}---\n${serviceFile('marker', await freePort())}`];
    const parsed = () => shim.shim.pipeline.model?.tunnels.some((t) => t.service.name === 'marker');
    const started = Date.now();
    shim.write('bulk-a.yaml', a);
    shim.write('bulk-b.yaml', b);
    const latencies: number[] = [];
    while (!parsed()) {
      if (Date.now() - started > 120_000) throw new Error('the folder was not parsed within 120 s');
      const t = performance.now();
      const res = await fetch(`${shim.adminUrl}/healthz`, { signal: AbortSignal.timeout(5000) });
      expect(res.status).toBe(200);
      latencies.push(performance.now() - t);
      await sleep(100);
    }
    const parseMs = Date.now() - started;
    const heapMiB = Math.round(process.memoryUsage().heapUsed / MiB);
    console.log(
      `parsing 2 x 7 MiB took ${parseMs} ms; /healthz answered ${latencies.length} times meanwhile, slowest ` +
        `${Math.round(Math.max(...latencies))} ms; main-thread heap ${heapMiB} MiB`,
    );
    // Probes ran all along the parse, and none waited on it (a blocked event loop answers after the parse).
    expect(latencies.length).toBeGreaterThanOrEqual(10);
    expect(Math.max(...latencies)).toBeLessThan(1000);
    expect(await diagnostics(shim.adminUrl)).toEqual([]);
    expect(await roundTrip(firstPort)).toMatch(/^backend\n/);
    fs.rmSync(path.join(shim.dir, 'bulk-a.yaml'));
    fs.rmSync(path.join(shim.dir, 'bulk-b.yaml'));
  }, 180_000);
});

describe('shutdown under load', () => {
  it('SIGTERM in the middle of parsing a large folder ends serve within 5 s', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'large-sigterm-'));
    const [xdsPort, adminPort] = [await freePort(), await freePort()];
    fs.writeFileSync(path.join(dir, 'first.yaml'), serviceFile('first', firstPort));
    const child = spawnCli([...serveArgs(dir, xdsPort, adminPort), '--log-level', 'debug']);
    try {
      await waitFor(
        'serve to be ready',
        async () => {
          if (child.exitCode !== null) throw new Error(`serve exited: ${child.output()}`);
          return (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).ok;
        },
        20_000,
        100,
      );
      fs.writeFileSync(path.join(dir, 'bulk.yaml'), bulkYaml(7, 'a'));
      // The file takes many seconds to parse; signal well inside that.
      await sleep(1500);
      const signalled = Date.now();
      child.kill('SIGTERM');
      const code = await new Promise<number | null>((resolve) =>
        child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', resolve),
      );
      const took = Date.now() - signalled;
      console.log(`serve exited ${took} ms after SIGTERM, mid-parse`);
      expect(took).toBeLessThan(5000);
      expect(code).toBe(0);
      // It was mid-parse: the reload that started after the write never finished.
      const log = child.output();
      expect(log.lastIndexOf('"msg":"parsing files"')).toBeGreaterThan(log.lastIndexOf('"msg":"source reloaded"'));
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
