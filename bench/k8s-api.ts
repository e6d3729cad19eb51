// The Kubernetes side of bench/add-remove.ts: a real kube-apiserver (test/k8s/harness.ts) holding the
// benchmark's Services and EndpointSlices, changed over IPC. Runs through tsx (it imports the test
// harness); stops the API server when told to, on SIGTERM, or when its parent goes.
import type { KubernetesObject } from '@kubernetes/client-node';
import { apply, remove } from '../test/helpers/kube.js';
import { startApiServer, type ApiServer } from '../test/k8s/harness.js';
import { addedName, serviceObjects } from './fixtures.js';

let api: ApiServer | undefined;
const namespace = 'bench';

/** Service i as the API server takes it: its cluster IP allocated by the server, not the fixture's. */
function objects(i: number, marker?: string, name?: string): KubernetesObject[] {
  return serviceObjects(i, marker, name).map(({ object }) => {
    const o = structuredClone(object) as KubernetesObject & { spec?: { clusterIP?: string } };
    delete o.spec?.clusterIP;
    return o;
  });
}

async function stop(): Promise<void> {
  await api?.stop();
  api = undefined;
}
process.on('SIGTERM', () => void stop().finally(() => process.exit(0)));
process.on('disconnect', () => void stop().finally(() => process.exit(0)));

process.on('message', async (m: { cmd: string; services?: number; i?: number; k?: number; marker?: string }) => {
  try {
    if (m.cmd === 'start') {
      const t0 = performance.now();
      api = await startApiServer();
      const kc = api.kubeConfig('admin');
      await apply(kc, [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } } as KubernetesObject]);
      const all = Array.from({ length: m.services! }, (_, i) => objects(i)).flat();
      // Eight writers at a time: the API server, not this loop, should be the limit.
      for (let i = 0; i < all.length; i += 8) await Promise.all(all.slice(i, i + 8).map((o) => apply(kc, [o])));
      process.send!({ cmd: 'started', kubeconfig: api.kubeconfigPath, setupMs: performance.now() - t0 });
    } else if (m.cmd === 'add') {
      await apply(api!.kubeConfig('admin'), objects(m.i!, m.marker, addedName(m.k!)));
      process.send!({ cmd: 'added' });
    } else if (m.cmd === 'remove') {
      await remove(api!.kubeConfig('admin'), objects(m.i!, undefined, addedName(m.k!)));
      process.send!({ cmd: 'removed' });
    } else if (m.cmd === 'stop') {
      await stop();
      process.send!({ cmd: 'stopped' });
    }
  } catch (err) {
    process.send!({ cmd: 'error', message: err instanceof Error ? err.message : String(err) });
  }
});
process.send!({ cmd: 'ready' });
