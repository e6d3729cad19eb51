// A real Envoy from a bootstrap the test wrote, run under a uid of the test's choosing: SPIRE's `unix`
// workload attestor tells workloads apart by the uid of the process on the other end of the agent
// socket, so two Envoys with two identities run as two uids (the tests run as root, which may setuid).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { envoyAdmin, envoyBinary, type EnvoyProcess } from './envoy.js';
import { waitFor } from './wait.js';

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Starts Envoy as `uid` (and gid) with `bootstrap(dir)`, the bootstrap built for a directory the Envoy
 * owns (its access log goes to `${dir}/access.log`); admin on a port it picks on 127.0.0.1.
 */
export async function startEnvoyAs(
  name: string,
  uid: number,
  bootstrap: (dir: string) => Record<string, unknown> | Promise<Record<string, unknown>>,
): Promise<EnvoyProcess> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `envoy-${name}-`));
  fs.chownSync(dir, uid, uid);
  const accessLogPath = path.join(dir, 'access.log');
  const adminPathFile = path.join(dir, 'admin-address');
  const config = {
    ...(await bootstrap(dir)),
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
  };
  const configPath = path.join(dir, 'bootstrap.json');
  fs.writeFileSync(configPath, JSON.stringify(config));
  const logPath = path.join(dir, 'envoy.log');
  const logFile = fs.openSync(logPath, 'w');
  const args = ['-c', configPath, '--admin-address-path', adminPathFile, '--disable-hot-restart'];
  args.push('--concurrency', '1', '-l', 'warning', '--drain-time-s', '1', '--file-flush-interval-msec', '100');
  const child = spawn(envoyBinary(), args, { stdio: ['ignore', logFile, logFile], uid, gid: uid });
  running.add(child);
  let exited = false;
  child.on('exit', () => {
    exited = true;
    running.delete(child);
  });
  const adminAddress = await waitFor(`Envoy ${name} admin address`, () => {
    if (exited) throw new Error(`Envoy exited: ${fs.readFileSync(logPath, 'utf8').slice(-2000)}`);
    const text = fs.existsSync(adminPathFile) ? fs.readFileSync(adminPathFile, 'utf8').trim() : '';
    return text || undefined;
  });
  const adminUrl = `http://${adminAddress}`;
  return {
    name,
    adminUrl,
    accessLogPath,
    dir,
    process: child,
    ...envoyAdmin(adminUrl, accessLogPath),
    stop: async () => {
      if (!exited) {
        child.kill('SIGTERM');
        await waitFor(`Envoy ${name} to exit`, () => exited, 10_000).catch(() => child.kill('SIGKILL'));
      }
      fs.closeSync(logFile);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
