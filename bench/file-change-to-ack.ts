// Time from a change to the watched YAML file until a real originating Envoy has ACKed the new
// listeners (median and max of N changes), and the RSS of the real `tunnel-shim serve` process
// with the demo example loaded. Run after scripts/setup.sh: npx tsx bench/file-change-to-ack.ts [N]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEnvoy } from '../test/helpers/envoy.js';
import { freePort } from '../test/helpers/net.js';
import { serviceYaml } from '../test/helpers/objects.js';
import { waitFor } from '../test/helpers/wait.js';

const rounds = Number(process.argv[2] ?? 20);
const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-'));
fs.copyFileSync(path.join(repo, 'envoy-configs/demo/services.yaml'), path.join(dir, 'demo.yaml'));
const [xdsPort, adminPort] = [await freePort(), await freePort()];
const shim = spawn(
  process.execPath,
  [
    path.join(repo, 'bin/tunnel-shim.js'),
    'serve',
    '--source',
    `file:${dir}`,
    '--xds-address',
    `127.0.0.1:${xdsPort}`,
    '--admin-address',
    `127.0.0.1:${adminPort}`,
    '--log-level',
    'warn',
  ],
  { stdio: 'inherit' },
);
const admin = `http://127.0.0.1:${adminPort}`;
await waitFor('shim ready', async () => (await fetch(`${admin}/readyz`)).ok, 15_000, 50);
const envoy = await startEnvoy({
  role: 'originate',
  nodeId: 'bench-originator',
  xdsAddress: `127.0.0.1:${xdsPort}`,
  listenAddress: '127.0.0.1',
});

async function ackedListeners(): Promise<string | undefined> {
  const nodes = (await (await fetch(`${admin}/debug/nodes`)).json()) as {
    id: string;
    types: Record<string, { status: string; ackedVersion: string }>;
  }[];
  const t = nodes.find((n) => n.id === 'bench-originator')?.types.listener;
  return t?.status === 'SYNCED' ? t.ackedVersion : undefined;
}
await waitFor('initial sync', ackedListeners, 15_000, 5);
const rssKb = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${shim.pid}/status`, 'utf8'))?.[1]);

const times: number[] = [];
for (let i = 0; i < rounds; i++) {
  const before = await ackedListeners();
  const started = performance.now();
  const tmp = path.join(dir, '.extra.tmp');
  fs.writeFileSync(
    tmp,
    serviceYaml({ name: `bench-${i}`, namespace: 'bench', clusterIP: '10.96.9.9', port: 40000 + i }),
  );
  fs.renameSync(tmp, path.join(dir, 'extra.yaml'));
  await waitFor(
    'ACK of the new listener',
    async () => {
      const v = await ackedListeners();
      return v !== undefined && v !== before ? v : undefined;
    },
    10_000,
    1,
  );
  times.push(performance.now() - started);
}
times.sort((a, b) => a - b);
const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))]!.toFixed(1);
console.log(`file change -> originator ACK, ${rounds} changes: median ${at(0.5)} ms, min ${at(0)} ms, max ${at(1)} ms`);
console.log('  (includes the file watcher settle of 50 ms and polling /debug/nodes)');
console.log(
  `tunnel-shim serve RSS with the demo example loaded and one Envoy connected: ${(rssKb / 1024).toFixed(1)} MiB`,
);
await envoy.stop();
shim.kill('SIGTERM');
fs.rmSync(dir, { recursive: true, force: true });
