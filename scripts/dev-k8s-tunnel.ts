// npm run dev:k8s-tunnel — bytes through a tunnel whose Service comes from a real Kubernetes API server,
// on one machine: a throwaway etcd + kube-apiserver, an annotated Service and its EndpointSlice, a "pod"
// in a network namespace (the API server rejects loopback endpoint addresses) running an echo server and
// the terminating Envoy, `tunnel-shim serve --source kubernetes`, and an originating Envoy on
// 127.0.0.1:7001. Needs root (ip netns). Stays up until Ctrl-C, or exits after the bytes with --once.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startApiServer } from '../test/k8s/harness.js';
import { apply, endpointSlice, service } from '../test/helpers/kube.js';
import { startEnvoy } from '../test/helpers/envoy.js';
import { Client, freePort, roundTrip } from '../test/helpers/net.js';
import { createNetns } from '../test/helpers/netns.js';
import { repo } from '../test/helpers/repo.js';
import { waitFor } from '../test/helpers/wait.js';

const once = process.argv.includes('--once');
const appPort = 7001;
const say = (text: string) => process.stdout.write(`==> ${text}\n`);
const cleanup: (() => Promise<unknown> | void)[] = [];
const stop = async () => {
  for (const fn of cleanup.reverse()) await Promise.resolve(fn()).catch(() => undefined);
  cleanup.length = 0;
};
process.once('SIGINT', () => void stop().then(() => process.exit(0)));
process.once('SIGTERM', () => void stop().then(() => process.exit(0)));

async function main() {
  if (process.getuid?.() !== 0) throw new Error('this needs root: it makes a network namespace (ip netns) for the pod');
  say('etcd and kube-apiserver on loopback (the first run builds them from Go modules: minutes)');
  const api = await startApiServer();
  cleanup.push(() => api.stop());
  say('a "pod" in a network namespace: an echo server on POD_IP:9000');
  const pods = createNetns(1);
  cleanup.push(() => pods.destroy());
  const podIp = pods.addresses[0]!;
  await pods.startEcho([{ address: podIp, port: 9000, name: 'echo-pod' }]);

  say(
    `kubectl apply: Service demo/echo (tunnel-shim.io/tunnel: h2, port ${appPort}) and its EndpointSlice ` +
      `(${podIp}:9000)`,
  );
  const admin = api.kubeConfig('admin');
  await apply(admin, [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'demo' } },
    service({ name: 'echo', namespace: 'demo', port: appPort }),
    endpointSlice({ service: 'echo', namespace: 'demo', port: 9000, ips: [podIp] }),
  ]);

  // The shim's xDS listens on the host's end of the namespace's link, so the pod's Envoy reaches it.
  const xdsAddress = `${pods.hostAddress}:${await freePort(pods.hostAddress)}`;
  const adminAddress = `127.0.0.1:${await freePort()}`;
  const args = [
    'serve',
    '--source',
    'kubernetes',
    '--xds-address',
    xdsAddress,
    '--admin-address',
    adminAddress,
    '--log-level',
    'warn',
  ];
  say(`KUBECONFIG=${api.kubeconfigPath} tunnel-shim ${args.join(' ')}`);
  const shim = spawn(process.execPath, [path.join(repo, 'bin/tunnel-shim.js'), ...args], {
    env: { ...process.env, KUBECONFIG: api.kubeconfigPath },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  cleanup.push(() => void shim.kill('SIGTERM'));
  await waitFor(
    'the shim to be ready',
    async () => {
      if (shim.exitCode !== null) throw new Error(`tunnel-shim exited with code ${shim.exitCode}`);
      return (await fetch(`http://${adminAddress}/readyz`)).ok;
    },
    30_000,
    100,
  );

  say(`terminating Envoy in the pod's namespace, originating Envoy on 127.0.0.1:${appPort}`);
  const [terminator, originator] = await Promise.all([
    startEnvoy({
      role: 'terminate',
      nodeId: 'pod-terminator',
      xdsAddress,
      netns: { exec: pods.exec, adminHost: podIp },
    }),
    startEnvoy({ role: 'originate', nodeId: 'laptop-originator', xdsAddress, listenAddress: '127.0.0.1' }),
  ]);
  cleanup.push(...[terminator, originator].map((e) => () => fs.rmSync(e.dir, { recursive: true, force: true })));
  cleanup.push(
    () => terminator.stop(),
    () => originator.stop(),
  );

  say('sending 5 connections through the tunnel');
  await waitFor('the tunnel', () => roundTrip(appPort).then(() => true), 30_000, 200);
  let bytes = 0;
  for (let i = 1; i <= 5; i++) {
    const c = await Client.connect(appPort);
    const text = `hello #${i} through a Kubernetes-sourced tunnel\n`;
    const answer = await c.echo(text);
    bytes += Buffer.byteLength(text);
    c.close();
    if (i === 1) process.stdout.write(`    first answer: ${JSON.stringify(answer)}\n`);
  }
  process.stdout.write(`    bytes echoed back through the tunnel   ${bytes}\n`);
  if (once) return stop();
  say(
    `running: admin http://${adminAddress}/ui, KUBECONFIG=${api.kubeconfigPath} (edit the Service with ` +
      `kubectl); Ctrl-C to stop`,
  );
}

main().catch(async (err: Error) => {
  process.stderr.write(`dev:k8s-tunnel failed: ${err.message}\n`);
  await stop();
  process.exit(1);
});
