// npm run dev:apiserver — a throwaway etcd + kube-apiserver in the foreground, for trying the
// shim by hand against a real API server. Ctrl-C (or SIGTERM) stops both and deletes the data.
import { startApiServer } from '../test/k8s/harness.js';

const verbose = process.argv.includes('--verbose');
console.log('starting etcd and kube-apiserver (the first run builds them, which takes minutes)...');
const server = await startApiServer({ log: verbose ? (l) => console.log(l) : undefined });

console.log(`
kube-apiserver ready at ${server.url}
admin kubeconfig: ${server.kubeconfigPath}
shim kubeconfig (user "shim", no RBAC bindings yet): ${server.kubeconfigPaths.shim ?? ''}

export KUBECONFIG=${server.kubeconfigPath}

Ctrl-C to stop.`);

let stopping = false;
const shutdown = (sig: string): void => {
  if (stopping) return;
  stopping = true;
  console.log(`\n${sig}: stopping kube-apiserver and etcd...`);
  server.stop().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
};
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));
