// The main job in one command (`make demo`): the shim on the example file, an echo backend, a
// terminating and an originating Envoy, bytes through the tunnel, and what happened, from Envoy's
// own stats. Stays up until Ctrl-C (or exits at once with --once) so you can poke at it. The tunnel is
// mTLS: a development CA and one identity per Envoy are made at start (envoy-configs/demo/certs.yaml,
// removed at exit), served over SDS by the shim; the terminator's log names the originator's SPIFFE ID.
import { spawn } from 'node:child_process';
import YAML from 'yaml';
import { createCa, identitySecret, issueIdentity } from '../src/cli/dev-ca.js';
import fs from 'node:fs';
import path from 'node:path';
import { startEnvoy, type EnvoyProcess } from '../test/helpers/envoy.js';
import { Client, startEcho } from '../test/helpers/net.js';
import { waitFor } from '../test/helpers/wait.js';

const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const demoDir = path.join(repo, 'envoy-configs/demo');
const certsFile = path.join(demoDir, 'certs.yaml');
const identities = {
  originator: { namespace: 'demo', serviceAccount: 'client' },
  terminator: { namespace: 'demo', serviceAccount: 'echo' },
};

/** A development CA and one identity Secret per Envoy, for the file source (what `tunnel-shim certs` prints). */
async function writeCerts() {
  const ca = await createCa('cluster.local', { validHours: 72 });
  const secrets = [];
  for (const id of Object.values(identities)) {
    const leaf = await issueIdentity(ca, 'cluster.local', id, { validHours: 48 });
    secrets.push(YAML.stringify(identitySecret('cluster.local', id, leaf, ca.certPem)));
  }
  fs.writeFileSync(certsFile, secrets.join('---\n'));
}
const xdsAddress = '127.0.0.1:18000';
const adminUrl = 'http://127.0.0.1:18080';
const once = process.argv.includes('--once');

/** A line through the tunnel with nothing but Node (nc is not installed everywhere); the README shows it too. */
const tryIt =
  `node -e "const s = require('net').connect(7000, '127.0.0.1', () => s.write('hi\\n')); ` +
  `s.on('data', (d) => { process.stdout.write(d); s.end(); })"`;

const say = (text: string) => process.stdout.write(`\x1b[1m==> ${text}\x1b[0m\n`);

async function main() {
  const cleanup: (() => Promise<unknown> | void)[] = [];
  const stop = async () => {
    for (const fn of cleanup.reverse()) await fn();
  };
  process.once('SIGINT', () => void stop().then(() => process.exit(0)));
  process.once('SIGTERM', () => void stop().then(() => process.exit(0)));
  try {
    say('echo backend on 127.0.0.2:9000 (the endpoint in envoy-configs/demo/services.yaml)');
    const echo = await startEcho('127.0.0.2', 9000);
    cleanup.push(() => echo.close());

    say(`development CA and identities demo/client, demo/echo -> ${path.relative(repo, certsFile)}`);
    await writeCerts();
    cleanup.push(() => fs.rmSync(certsFile, { force: true }));

    say(`tunnel-shim serve --source file:${path.relative(repo, demoDir)} --mtls strict --insecure-identities`);
    const shim = spawn(
      process.execPath,
      [
        path.join(repo, 'bin/tunnel-shim.js'),
        'serve',
        '--source',
        `file:${demoDir}`,
        '--mtls',
        'strict',
        // The Envoys' identities are taken from their bootstrap (--identity): fine on a laptop only.
        '--insecure-identities',
        '--xds-address',
        xdsAddress,
        '--log-format',
        'pretty',
      ],
      {
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
    cleanup.push(() => void shim.kill('SIGTERM'));
    await waitFor(
      'the shim to be ready',
      async () => {
        if (shim.exitCode !== null) throw new Error(`tunnel-shim exited with code ${shim.exitCode}`);
        return (await fetch(`${adminUrl}/readyz`)).ok;
      },
      15_000,
      100,
    );

    say('terminating Envoy (mTLS tunnels on 127.0.0.2:15008) and originating Envoy (127.0.0.1:7000, 2 workers)');
    const [terminator, originator] = await Promise.all([
      startEnvoy({ role: 'terminate', nodeId: 'demo-terminator', xdsAddress, identity: 'demo/echo' }),
      startEnvoy({
        role: 'originate',
        nodeId: 'demo-originator',
        xdsAddress,
        listenAddress: '127.0.0.1',
        concurrency: 2,
        identity: 'demo/client',
      }),
    ]);
    // Their temporary folders (bootstrap, logs) go after the Envoys stop: cleanup runs last-in first-out.
    cleanup.push(...[terminator, originator].map((e) => () => fs.rmSync(e.dir, { recursive: true, force: true })));
    cleanup.push(
      () => terminator.stop(),
      () => originator.stop(),
    );
    // Both ends: a connection the originator takes before the terminator listens is closed at once.
    await waitFor(
      'the tunnel listeners',
      async () =>
        (await originator.stat('listener_manager.total_listeners_active')) >= 1 &&
        (await terminator.stat('listener_manager.total_listeners_active')) >= 1,
      15_000,
      100,
    );

    say('sending 10 connections through the tunnel');
    let bytes = 0;
    for (let i = 1; i <= 10; i++) {
      const client = await Client.connect(7000);
      const text = `hello #${i} through an HTTP/2 CONNECT tunnel\n`;
      await client.echo(text);
      bytes += Buffer.byteLength(text);
      client.close();
    }
    await report(originator, terminator, bytes);
    if (once) return await stop();
    say(`running: try \`${tryIt}\`, edit envoy-configs/demo/services.yaml, or`);
    process.stdout.write(`    open ${adminUrl}/ui (the live topology page)\n`);
    process.stdout.write(
      `    curl ${adminUrl}/debug/nodes    curl '${adminUrl}/debug/config?node=demo-originator'\n    Envoy ` +
        `admins: ${originator.adminUrl} (originate)  ${terminator.adminUrl} (terminate)\n    Ctrl-C to stop\n`,
    );
  } catch (err) {
    process.stderr.write(`demo failed: ${(err as Error).message}\n`);
    await stop();
    process.exit(1);
  }
}

async function report(originator: EnvoyProcess, terminator: EnvoyProcess, bytes: number) {
  const cluster = 'cluster.originate/demo/echo/7000';
  const log = await waitFor(
    'terminator access log',
    () => {
      const lines = terminator.accessLog();
      return lines.length >= 10 ? lines : undefined;
    },
    5000,
  );
  const rows = [
    ['bytes echoed back through the tunnel', bytes],
    [
      'app connections accepted by the originator',
      await originator.stat('tcp.originate_demo_echo_7000.downstream_cx_total'),
    ],
    ['CONNECT streams opened (tunnels)', await originator.stat(`${cluster}.upstream_rq_total`)],
    ['upstream HTTP/2 connections carrying them', await originator.stat(`${cluster}.upstream_cx_total`)],
    ['CONNECT requests the terminator answered 200', log.filter((l) => l.response_code === 200).length],
    [
      'TLS handshakes: originator, terminator',
      [
        await originator.stat(`${cluster}.ssl.handshake`),
        await terminator.stat('listener.127.0.0.2_15008.ssl.handshake'),
      ].join(', '),
    ],
  ];
  process.stdout.write('\n');
  for (const [label, value] of rows) process.stdout.write(`    ${String(label).padEnd(46)} ${value}\n`);
  const sample = log[0]!;
  process.stdout.write(
    `\n    terminator access log: ${sample.method} ${sample.authority} ${sample.protocol} ${sample.response_code} ` +
      `-> ${sample.upstream_host} (connection ${sample.connection_id})\n` +
      `    peer identity (mTLS):  ${sample.peer_identity} (certificate serial ${sample.peer_serial})\n\n`,
  );
}

await main();
