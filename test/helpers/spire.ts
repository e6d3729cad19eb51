// A real SPIRE for tests: spire-server (join_token node attestor, in-memory keys, SQLite in a temp dir)
// and one spire-agent attested with a join token, whose Workload API socket also serves Envoy SDS v3
// (secrets `default` and `ROOTCA`). Workloads are told apart by the `unix` attestor's uid, so each
// Envoy that needs its own identity runs under its own uid (test/helpers/spire-envoy.ts).
// The binaries come from scripts/spire-binaries.sh (built by scripts/setup.sh --test); a test never
// builds them and fails, naming the setup step, when they are missing.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './net.js';
import { repo } from './repo.js';
import { waitFor } from './wait.js';

const run = promisify(execFile);

export interface SpireWorkload {
  /** `ns/sa`: the SVID is spiffe://<trust domain>/ns/<ns>/sa/<sa> */
  identity: string;
  /** the uid the workload (an Envoy) runs as: its `unix:uid` selector */
  uid: number;
}

export interface Spire {
  trustDomain: string;
  /** the agent's Workload API socket, which serves SDS v3 */
  agentSocket: string;
  /** the PEM trust bundle the server signs with */
  bundlePem: string;
  joinToken: string;
  dir: string;
  spiffeId(identity: string): string;
  stop(): Promise<void>;
}

export function spireBinaries(): { server: string; agent: string } {
  let out: string;
  try {
    out = execFileSync('bash', [path.join(repo, 'scripts', 'spire-binaries.sh'), '--no-build'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? String(err);
    throw new Error(`SPIRE binaries missing: ${stderr.trim()}`);
  }
  const server = /^SPIRE_SERVER=(.+)$/m.exec(out)?.[1];
  const agent = /^SPIRE_AGENT=(.+)$/m.exec(out)?.[1];
  if (!server || !agent) throw new Error(`scripts/spire-binaries.sh printed no paths: ${out}`);
  return { server, agent };
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

interface Daemon {
  stop(): Promise<void>;
  log(): string;
  exited(): boolean;
}

function startDaemon(bin: string, args: string[], logPath: string): Daemon {
  const logFile = fs.openSync(logPath, 'w');
  const child = spawn(bin, args, { stdio: ['ignore', logFile, logFile] });
  running.add(child);
  let exited = false;
  child.on('exit', () => {
    exited = true;
    running.delete(child);
  });
  return {
    exited: () => exited,
    log: () => fs.readFileSync(logPath, 'utf8').slice(-3000),
    stop: async () => {
      if (!exited) {
        child.kill('SIGTERM');
        await waitFor(`${path.basename(bin)} to exit`, () => exited, 10_000).catch(() => child.kill('SIGKILL'));
      }
      fs.closeSync(logFile);
    },
  };
}

/** Polls a CLI command until it exits 0 (bounded), failing early with the daemon's log if it died. */
async function untilSucceeds(what: string, daemon: Daemon, bin: string, args: string[], timeoutMs: number) {
  return waitFor(
    what,
    async () => {
      if (daemon.exited()) throw new Error(`exited:\n${daemon.log()}`);
      return (await run(bin, args, { timeout: 5000 })).stdout;
    },
    timeoutMs,
    250,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n--- log ---\n${daemon.log()}`);
  });
}

const serverConfig = (o: { td: string; port: number; socket: string; data: string }) => `
server {
  bind_address = "127.0.0.1"
  bind_port = "${o.port}"
  socket_path = "${o.socket}"
  trust_domain = "${o.td}"
  data_dir = "${o.data}"
  log_level = "INFO"
}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = "${o.data}/datastore.sqlite3"
    }
  }
  NodeAttestor "join_token" {
    plugin_data {}
  }
  KeyManager "memory" {
    plugin_data {}
  }
}
`;

const agentConfig = (o: { td: string; port: number; socket: string; data: string; token: string; bundle: string }) => `
agent {
  server_address = "127.0.0.1"
  server_port = "${o.port}"
  socket_path = "${o.socket}"
  trust_domain = "${o.td}"
  trust_bundle_path = "${o.bundle}"
  data_dir = "${o.data}"
  join_token = "${o.token}"
  log_level = "INFO"
}
plugins {
  NodeAttestor "join_token" {
    plugin_data {}
  }
  KeyManager "memory" {
    plugin_data {}
  }
  WorkloadAttestor "unix" {
    plugin_data {}
  }
}
`;

/**
 * Starts spire-server, registers every workload under a fresh join token, starts spire-agent with that
 * token and returns once the agent serves SVIDs (it has synced the entries registered before it started).
 */
export async function startSpire(options: { trustDomain?: string; workloads: SpireWorkload[] }): Promise<Spire> {
  const bins = spireBinaries();
  const trustDomain = options.trustDomain ?? 'cluster.local';
  const spiffeId = (identity: string) => {
    const [ns, sa] = identity.split('/');
    return `spiffe://${trustDomain}/ns/${ns}/sa/${sa}`;
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spire-'));
  // Envoys running under other uids must reach the agent socket in here.
  fs.chmodSync(dir, 0o755);
  const daemons: Daemon[] = [];
  const stop = async () => {
    for (const d of daemons.reverse()) await d.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    const port = await freePort();
    const serverSocket = path.join(dir, 'server.sock');
    const agentSocket = path.join(dir, 'agent.sock');
    for (const sub of ['server-data', 'agent-data']) fs.mkdirSync(path.join(dir, sub));
    fs.writeFileSync(
      path.join(dir, 'server.conf'),
      serverConfig({ td: trustDomain, port, socket: serverSocket, data: path.join(dir, 'server-data') }),
    );
    const server = startDaemon(
      bins.server,
      ['run', '-config', path.join(dir, 'server.conf')],
      path.join(dir, 'server.log'),
    );
    daemons.push(server);
    const sock = ['-socketPath', serverSocket];
    await untilSucceeds('spire-server healthcheck', server, bins.server, ['healthcheck', ...sock], 60_000);

    const bundlePem = (await run(bins.server, ['bundle', 'show', ...sock])).stdout;
    const bundlePath = path.join(dir, 'bundle.pem');
    fs.writeFileSync(bundlePath, bundlePem);
    const tokenOut = (await run(bins.server, ['token', 'generate', '-ttl', '600', ...sock])).stdout;
    const joinToken = /Token: (\S+)/.exec(tokenOut)?.[1];
    if (!joinToken) throw new Error(`spire-server token generate printed no token: ${tokenOut}`);

    // The test process's own uid gets an entry too: `api fetch x509` run by the harness proves that
    // the agent has synced its entries and signed their SVIDs.
    const harness = { identity: 'spire-harness/harness', uid: process.getuid?.() ?? 0 };
    const parentId = `spiffe://${trustDomain}/spire/agent/join_token/${joinToken}`;
    for (const w of [...options.workloads, harness]) {
      await run(bins.server, [
        'entry',
        'create',
        ...sock,
        '-parentID',
        parentId,
        '-spiffeID',
        spiffeId(w.identity),
        '-selector',
        `unix:uid:${w.uid}`,
      ]);
    }

    fs.writeFileSync(
      path.join(dir, 'agent.conf'),
      agentConfig({
        td: trustDomain,
        port,
        socket: agentSocket,
        data: path.join(dir, 'agent-data'),
        token: joinToken,
        bundle: bundlePath,
      }),
    );
    const agent = startDaemon(
      bins.agent,
      ['run', '-config', path.join(dir, 'agent.conf')],
      path.join(dir, 'agent.log'),
    );
    daemons.push(agent);
    const fetched = await untilSucceeds(
      'spire-agent to serve an SVID',
      agent,
      bins.agent,
      ['api', 'fetch', 'x509', '-socketPath', agentSocket],
      60_000,
    );
    if (!fetched.includes(spiffeId(harness.identity)))
      throw new Error(`spire-agent served an unexpected SVID:\n${fetched}`);
    return { trustDomain, agentSocket, bundlePem, joinToken, dir, spiffeId, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
