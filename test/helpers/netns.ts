// A network namespace the test makes itself, standing in for a pod: the API server rejects loopback
// endpoint addresses, so Kubernetes tests put backends (and their terminator) at addresses of this
// namespace, reached over a veth pair. Only addresses of this namespace and the host's end are used.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { waitFor } from './wait.js';

export interface Netns {
  name: string;
  /** The host's end of the veth pair: bind servers here that the namespace must reach. */
  hostAddress: string;
  /** Addresses inside the namespace (pod IPs). */
  addresses: string[];
  /** Command prefix that runs a program inside the namespace. */
  exec: string[];
  /** The veth pair's ends: `host` here, `peer` inside the namespace (for tc, or to replace the link). */
  links: { host: string; peer: string };
  /** Echo servers inside the namespace: `${address}:${port}` answer with `name\n` then echo. */
  startEcho(servers: { address: string; port: number; name: string }[]): Promise<void>;
  destroy(): void;
}

const live = new Set<() => void>();
process.once('exit', () => {
  for (const destroy of live) destroy();
});

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** Makes a namespace with `count` addresses in 198.18.0.0/15 (RFC 2544, for benchmarking), unique per process. */
export function createNetns(count = 2): Netns {
  const id = process.pid % 250;
  const name = `tsb-${process.pid}`;
  const host = `tsbh${process.pid}`.slice(0, 15);
  const peer = `tsbp${process.pid}`.slice(0, 15);
  const prefix = `198.18.${id}`;
  const addresses = Array.from({ length: count }, (_, i) => `${prefix}.${i + 2}`);
  const children = new Set<ChildProcess>();
  const destroy = () => {
    for (const c of children) c.kill('SIGKILL');
    try {
      ip('netns', 'del', name);
    } catch {
      /* already gone */
    }
    try {
      ip('link', 'del', host);
    } catch {
      /* removed with the namespace */
    }
    live.delete(destroy);
  };
  destroy();
  ip('netns', 'add', name);
  live.add(destroy);
  ip('link', 'add', host, 'type', 'veth', 'peer', 'name', peer);
  ip('link', 'set', peer, 'netns', name);
  ip('addr', 'add', `${prefix}.1/28`, 'dev', host);
  ip('link', 'set', host, 'up');
  const inNs = (...args: string[]) => ip('netns', 'exec', name, 'ip', ...args);
  for (const a of addresses) inNs('addr', 'add', `${a}/28`, 'dev', peer);
  inNs('link', 'set', peer, 'up');
  inNs('link', 'set', 'lo', 'up');
  const exec = ['ip', 'netns', 'exec', name];
  return {
    name,
    hostAddress: `${prefix}.1`,
    addresses,
    exec,
    links: { host, peer },
    destroy,
    async startEcho(servers) {
      const script = path.join(path.dirname(new URL(import.meta.url).pathname), 'echo-main.ts');
      const child = spawn(
        exec[0]!,
        [...exec.slice(1), process.execPath, '--import', 'tsx', script, JSON.stringify(servers)],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      children.add(child);
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      await waitFor(
        'echo servers in the namespace',
        () => {
          if (child.exitCode !== null) throw new Error(`echo servers exited with ${child.exitCode}`);
          return out.includes('ready');
        },
        20_000,
      );
    },
  };
}
