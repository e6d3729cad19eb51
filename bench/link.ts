// A network namespace behind a link with a fixed delay each way, standing in for a cross-zone network:
// the data-plane benchmark puts the terminating side there, so a new TCP connection across it costs
// a real round trip (on loopback a handshake costs microseconds). The delay is tc's netem on both
// veth ends where the kernel has it; otherwise the veth is replaced by two TUN devices bridged by
// delay-link.py, and the link says so (with the tc error), so the figures are never mislabelled.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createNetns, type Netns } from '../test/helpers/netns.js';
import { benchDir, started } from './child.js';

export interface DelayedLink {
  ns: Netns;
  /** How the delay is made, for the table. */
  how: string;
  destroy(): void;
}

function run(cmd: string, ...args: string[]): void {
  try {
    execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? '').trim();
    throw new Error(`\`${cmd} ${args.join(' ')}\` failed: ${stderr || (err as Error).message}`);
  }
}

/**
 * Makes the namespace (2 addresses in 198.18.0.0/15) and its delayed link; `destroy` removes both, as does exit
 * or Ctrl-C.
 */
export async function delayedLink(delayMs: number): Promise<DelayedLink> {
  const ns = createNetns(2);
  let bridge: ChildProcess | undefined;
  // Signals skip 'exit' handlers unless something turns them into an exit.
  const onSignal = (signal: NodeJS.Signals) => process.exit(signal === 'SIGINT' ? 130 : 143);
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  const destroy = () => {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    bridge?.kill('SIGKILL');
    ns.destroy(); // the qdiscs go with the veth, the TUN devices with the bridge
  };
  try {
    const netem = (dev: string) => ['qdisc', 'add', 'dev', dev, 'root', 'netem', 'delay', `${delayMs}ms`];
    try {
      run('tc', ...netem(ns.links.host));
      run(ns.exec[0]!, ...ns.exec.slice(1), 'tc', ...netem(ns.links.peer));
      return { ns, how: `tc netem delay ${delayMs} ms on both veth ends`, destroy };
    } catch (err) {
      bridge = await tunBridge(ns, delayMs);
      return { ns, how: `${delayMs} ms each way in a userspace TUN bridge (${(err as Error).message})`, destroy };
    }
  } catch (err) {
    destroy();
    throw err;
  }
}

/** Replaces the namespace's veth pair with two TUN devices at the same addresses, bridged with the delay. */
async function tunBridge(ns: Netns, delayMs: number): Promise<ChildProcess> {
  const host = `tsbt${process.pid}`.slice(0, 15);
  const peer = `tsbu${process.pid}`.slice(0, 15);
  run('ip', 'link', 'del', ns.links.host);
  // stdin stays open for the bridge's life: it exits when the benchmark does, however it ends.
  const bridge = spawn('python3', [path.join(benchDir, 'delay-link.py'), host, peer, String(delayMs)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  started.add(bridge);
  bridge.once('exit', () => started.delete(bridge));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('delay-link.py did not start within 5 s')), 5000);
    bridge.on('error', reject);
    bridge.once('exit', (code) => reject(new Error(`delay-link.py exited with ${code}`)));
    bridge.stdout!.once('data', () => (clearTimeout(timer), resolve()));
  });
  const inNs = (...args: string[]) => run(ns.exec[0]!, ...ns.exec.slice(1), ...args);
  try {
    run('ip', 'link', 'set', peer, 'netns', ns.name);
    run('ip', 'addr', 'add', `${ns.hostAddress}/28`, 'dev', host);
    run('ip', 'link', 'set', host, 'up');
    for (const a of ns.addresses) inNs('ip', 'addr', 'add', `${a}/28`, 'dev', peer);
    inNs('ip', 'link', 'set', peer, 'up');
  } catch (err) {
    bridge.kill('SIGKILL');
    throw err;
  }
  return bridge;
}
