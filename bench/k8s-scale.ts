// The Kubernetes source at size, against a real kube-apiserver (test/k8s/harness.ts):
//  - time from start to ready, RSS and CPU seconds of `tunnel-shim serve --source kubernetes`
//    watching N Services with 3 endpoints each (default 5,000);
//  - time from a Service annotation change in the API server to a real originating Envoy's ACK
//    (median and max of 20).
// Run after scripts/setup.sh: npx tsx bench/k8s-scale.ts [N]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { KubernetesObject } from '@kubernetes/client-node';
import { startEnvoy } from '../test/helpers/envoy.js';
import { apply, endpointSlice, service } from '../test/helpers/kube.js';
import { freePort } from '../test/helpers/net.js';
import { waitFor } from '../test/helpers/wait.js';
import { startApiServer } from '../test/k8s/harness.js';

const count = Number(process.argv[2] ?? 5000);
const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const api = await startApiServer();
const admin = api.kubeConfig('admin');
const ns = 'scale';
await apply(admin, [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } } as KubernetesObject]);

const t0 = performance.now();
const objects: KubernetesObject[] = [];
for (let i = 0; i < count; i++) {
  const octet = (n: number) => `198.18.${Math.floor(n / 250) % 250}.${(n % 250) + 2}`;
  // Distinct ports so one laptop-style originator (listening on 127.0.0.1) can hold every listener.
  objects.push(service({ name: `svc-${i}`, namespace: ns, port: 20000 + i }));
  objects.push(
    endpointSlice({
      service: `svc-${i}`,
      namespace: ns,
      port: 8080,
      ips: [octet(3 * i), octet(3 * i + 1), octet(3 * i + 2)],
    }),
  );
}
// Eight writers at a time: the API server, not this loop, should be the limit.
for (let i = 0; i < objects.length; i += 8) await Promise.all(objects.slice(i, i + 8).map((o) => apply(admin, [o])));
console.log(
  `created ${count} Services + ${count} EndpointSlices (3 endpoints each) in ` +
    `${((performance.now() - t0) / 1000).toFixed(1)} s`,
);

const [xdsPort, adminPort] = [await freePort(), await freePort()];
const started = performance.now();
const shim = spawn(
  process.execPath,
  [
    path.join(repo, 'bin/tunnel-shim.js'),
    'serve',
    '--source',
    'kubernetes',
    '--xds-address',
    `127.0.0.1:${xdsPort}`,
    '--admin-address',
    `127.0.0.1:${adminPort}`,
    '--log-level',
    'warn',
  ],
  {
    stdio: 'inherit',
    env: { ...process.env, KUBECONFIG: api.kubeconfigPath },
  },
);
const adminUrl = `http://127.0.0.1:${adminPort}`;
await waitFor('ready', async () => (await fetch(`${adminUrl}/readyz`)).ok, 300_000, 20);
const readyMs = performance.now() - started;
const cpuSeconds = () => {
  const fields = fs.readFileSync(`/proc/${shim.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
};
const rssMiB = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${shim.pid}/status`, 'utf8'))![1]) / 1024;
const envoy = await startEnvoy({
  role: 'originate',
  nodeId: 'scale-originator',
  xdsAddress: `127.0.0.1:${xdsPort}`,
  listenAddress: '127.0.0.1',
});
type Node = { id: string; types: Record<string, { status: string; ackedVersion: string }> };
const listenerAck = async () => {
  const nodes = (await (await fetch(`${adminUrl}/debug/nodes`)).json()) as Node[];
  const l = nodes.find((n) => n.id === 'scale-originator')?.types.listener;
  return l?.status === 'SYNCED' ? l.ackedVersion : undefined;
};
const synced = performance.now();
await waitFor('Envoy synced', listenerAck, 300_000, 20);
console.log(
  `an Envoy (listen 127.0.0.1) got ${count} listeners and ACKed in ` +
    `${((performance.now() - synced) / 1000).toFixed(1)} s (Envoy's own work dominates)`,
);
const cpuAtReady = cpuSeconds();
await new Promise((r) => setTimeout(r, 30_000));
const idleCpu = cpuSeconds() - cpuAtReady;

const times: number[] = [];
for (let i = 0; i < 20; i++) {
  const before = await listenerAck();
  const t = performance.now();
  // Dropping the tunnel annotation removes that Service's listener: an LDS change the Envoy must ACK.
  await apply(admin, [service({ name: `svc-${i}`, namespace: ns, port: 20000 + i, annotations: {} })]);
  await waitFor(
    'ACK',
    async () => {
      const v = await listenerAck();
      return v !== undefined && v !== before ? v : undefined;
    },
    60_000,
    2,
  );
  times.push(performance.now() - t);
}
times.sort((a, b) => a - b);
console.log(`\n| figure | value |\n| --- | --- |`);
console.log(`| Services watched (3 endpoints each) | ${count} |`);
console.log(`| start -> /readyz | ${(readyMs / 1000).toFixed(2)} s |`);
console.log(`| RSS after sync and 20 changes | ${rssMiB().toFixed(0)} MiB |`);
console.log(`| CPU seconds from start to ready | ${cpuAtReady.toFixed(2)} s |`);
console.log(`| CPU seconds over 30 s of idle watching | ${idleCpu.toFixed(2)} s |`);
console.log(
  `| annotation change -> originator ACK (20) | median ${times[10]!.toFixed(0)} ms, max ${times[19]!.toFixed(0)} ms |`,
);
await envoy.stop();
shim.kill('SIGTERM');
await api.stop();
process.exit(0);
