// tunnel-shim: the command line.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import YAML from 'yaml';
import { createLogger, type LogFormat } from '../logger.js';
import { Shim } from '../shim.js';
import { defaultFileLimits, FileSource, type FileLimits } from '../sources/file.js';
import type { EventRecorder } from '../sources/kube-events.js';
import type { Source } from '../sources/source.js';
import { bootstrapYaml, buildBootstrap, checkBootstrap } from './bootstrap.js';
import { registerInject } from './inject-command.js';
import { addBootstrapTlsOptions, addServeTlsOptions, bootstrapTlsFrom, serveTlsFrom } from './xds-tls-options.js';
import { diagnosticLines, render } from '../render.js';
import { roles, type Role } from '../translate/view.js';
import { parseDurationMs } from '../model/durations.js';
import { importEnvoyFilters } from '../importer/envoyfilter.js';
import { printImport } from '../importer/print.js';
import { parseYamlObjects } from '../sources/yaml.js';
import { parseAccessLogDir } from '../model/annotations.js';
import { checkDnsLabel } from '../model/values.js';
import type { MtlsMode } from '../model/mtls.js';
import {
  adminGet,
  formatData,
  nodeResources,
  nodeSummary,
  statusTable,
  type NodeConfig,
  type NodeStatus,
} from './status.js';
import { errorMessage } from '../errors.js';

async function sourceFrom(
  spec: string,
  logger: ReturnType<typeof createLogger>,
  namespaces: string[],
  limits: Partial<FileLimits> = {},
): Promise<{ source: Source; events?: EventRecorder }> {
  if (spec === 'kubernetes') {
    // Loaded only when used: the Kubernetes client is tens of MB of heap a file-sourced shim never needs.
    const [{ KubernetesSource }, { EventRecorder }] = await Promise.all([
      import('../sources/kubernetes.js'),
      import('../sources/kube-events.js'),
    ]);
    const source = new KubernetesSource({ logger, namespaces });
    return { source, events: new EventRecorder(source.kubeConfig, logger) };
  }
  if (spec.startsWith('file:')) {
    const path = spec.slice('file:'.length);
    if (!fs.existsSync(path)) throw new Error(`--source ${spec}: ${path} does not exist`);
    return { source: new FileSource(path, logger, undefined, limits) };
  }
  throw new Error(`--source ${spec}: expected kubernetes or file:PATH`);
}

/** The `serve` options of mutual TLS, checked. */
function tlsOptions(o: Record<string, string | boolean | undefined>) {
  const sds = o.sds as string | undefined;
  if (sds !== undefined && !/^unix:\/\S+$/.test(sds)) throw new Error(`--sds ${sds}: expected unix:/PATH`);
  const names = String(o.sdsNames).split(',');
  if (names.length !== 2 || names.some((n) => !n.trim()))
    throw new Error(`--sds-names ${o.sdsNames}: expected CERT,BUNDLE`);
  const domain = String(o.trustDomain);
  if (!/^[a-z0-9._-]+$/.test(domain)) throw new Error(`--trust-domain ${domain}: may hold only a-z 0-9 . _ -`);
  return {
    trustDomain: domain,
    mtlsDefault: o.mtls as MtlsMode,
    insecureIdentities: Boolean(o.insecureIdentities),
    sds,
    sdsNames:
      names[0] === 'default' && names[1] === 'ROOTCA' ? undefined : (names.map((n) => n.trim()) as [string, string]),
    expiryWarningMs: durationMs('--cert-expiry-warning', String(o.certExpiryWarning)),
  };
}

function durationMs(option: string, text: string): number {
  const parsed = parseDurationMs(text);
  if ('error' in parsed || parsed.ms <= 0)
    throw new Error(`${option} ${text}: expected a duration like 500ms, 30s, 30m or 1h`);
  return Math.round(parsed.ms);
}

/** Dot-separated DNS labels: the domain ends every tunnel authority. */
function clusterDomain(value: string): string {
  const problem = value.split('.').map(checkDnsLabel).find(Boolean);
  if (problem) throw new InvalidArgumentError(problem);
  return value;
}

/** `8MiB`, `512KiB`, `1GiB` or plain bytes. */
function byteSize(value: string): number {
  const m = /^(\d+)\s*(B|KiB|MiB|GiB)?$/.exec(value.trim());
  const bytes = m ? Number(m[1]) * { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 }[(m[2] ?? 'B') as 'B'] : NaN;
  if (!(bytes > 0) || !Number.isSafeInteger(bytes)) {
    throw new InvalidArgumentError('expected a size like 8MiB, 512KiB or 1048576');
  }
  return bytes;
}

/** Repeatable `--access-log-dir DIR`, each checked and normalised as it is parsed. */
function accessLogDir(value: string, all: string[]): string[] {
  const parsed = parseAccessLogDir(value);
  if ('error' in parsed) throw new InvalidArgumentError(parsed.error);
  return [...all, parsed.dir];
}

const accessLogDirHelp =
  'write per-Service access logs (tunnel-shim.io/access-log) only under this directory (repeatable; ' +
  '/dev/stdout and /dev/stderr are always allowed); a Service naming another path is an error';

/** The package's version, from the package.json above src/ or dist/src/ (the CLI runs from either). */
function packageVersion(): string {
  for (const candidate of ['../../package.json', '../../../package.json']) {
    const file = fileURLToPath(new URL(candidate, import.meta.url));
    if (fs.existsSync(file)) return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
  }
  return 'unknown';
}

export function program(): Command {
  const cli = new Command('tunnel-shim')
    .description('An xDS control plane that serves Envoy HTTP CONNECT tunnels')
    .showHelpAfterError();
  cli.version(packageVersion(), '-V, --version', 'print the version of tunnel-shim');

  const serve = cli
    .command('serve')
    .description('serve listeners, routes, clusters and endpoints to Envoys over ADS')
    .requiredOption(
      '--source <spec>',
      'where tunnels are described: kubernetes (KUBECONFIG, ~/.kube/config or in-cluster), ' +
        'or file:PATH (a YAML file or folder)',
    )
    .option(
      '--namespace <ns>',
      'kubernetes source: watch only this namespace (repeatable)',
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option('--xds-address <host:port>', 'gRPC ADS listen address', '127.0.0.1:18000')
    .option('--admin-address <host:port>', 'admin HTTP listen address (loopback unless you mean it)', '127.0.0.1:18080')
    .addOption(
      new Option('--cluster-domain <domain>', 'Kubernetes cluster domain used in tunnel authorities')
        .argParser(clusterDomain)
        .default('cluster.local'),
    )
    .addOption(
      new Option('--access-log-dir <dir>', accessLogDirHelp).argParser(accessLogDir).default([], 'any absolute path'),
    )
    .option(
      '--log-level <level>',
      'trace, debug, info, warn, error (change it at run time: PUT /debug/log-level?level=debug on the admin port)',
      'info',
    )
    .addOption(
      new Option('--log-format <format>', 'json, or pretty for terminals').choices(['json', 'pretty']).default('json'),
    )
    .option(
      '--max-connection-age <duration>',
      'ask Envoys to reconnect after this long (±10% jitter), so they spread over replicas',
      '30m',
    )
    .option('--max-connection-age-grace <duration>', 'then close the connection after this long', '1m')
    .addOption(
      new Option('--max-file-size <size>', 'file source: a larger YAML file is not read (an error names it)')
        .argParser(byteSize)
        .default(defaultFileLimits.maxFileBytes, '8MiB'),
    )
    .addOption(
      new Option('--max-source-size <size>', 'file source: files past this total (in name order) are not read')
        .argParser(byteSize)
        .default(defaultFileLimits.maxTotalBytes, '64MiB'),
    )
    .option(
      '--stuck-stream-timeout <duration>',
      'close an ADS stream whose Envoy reads nothing of what it was sent for this long (DEADLINE_EXCEEDED)',
      '60s',
    )
    .option('--trust-domain <domain>', 'SPIFFE trust domain of workload identities', 'cluster.local')
    .addOption(
      new Option('--mtls <mode>', 'mTLS mode of Services without tunnel-shim.io/mtls')
        .choices(['auto', 'strict', 'permissive', 'disable'])
        .default('auto'),
    )
    .option(
      '--insecure-identities',
      'believe the identity a node claims in its bootstrap metadata (bootstrap --identity) ' +
        'and serve it its key: laptops only',
    )
    .option('--sds <unix:PATH>', "nodes' certificates come from this SDS server (a SPIRE agent); the shim serves none")
    .option('--sds-names <cert,bundle>', 'secret names on that SDS server', 'default,ROOTCA')
    .option('--cert-expiry-warning <duration>', 'a served certificate this close to its end is a warning', '24h')
    .action(async (o) => {
      const logger = createLogger(o.logLevel, o.logFormat as LogFormat);
      const limits = { maxFileBytes: o.maxFileSize, maxTotalBytes: o.maxSourceSize };
      const { source, events } = await sourceFrom(o.source, logger, o.namespace, limits);
      const shim = new Shim({
        source,
        events,
        xdsAddress: o.xdsAddress,
        adminAddress: o.adminAddress,
        clusterDomain: o.clusterDomain,
        accessLogDirs: o.accessLogDir,
        logger,
        maxConnectionAgeMs: durationMs('--max-connection-age', o.maxConnectionAge),
        maxConnectionAgeGraceMs: durationMs('--max-connection-age-grace', o.maxConnectionAgeGrace),
        writeBudget: { cutAfterMs: durationMs('--stuck-stream-timeout', o.stuckStreamTimeout) },
        ...tlsOptions(o),
        ...serveTlsFrom(o),
      });
      // Installed before start: a signal during the first read of a large source stops it too.
      const shutdown = async (signal: string) => {
        logger.info({ signal }, 'shutting down');
        const timer = setTimeout(() => process.exit(1), 5000).unref();
        const stopped = await shim.stop().then(
          () => true,
          (err: Error) => (logger.error({ err: err.message }, 'shutdown failed'), false),
        );
        clearTimeout(timer);
        process.exit(stopped ? 0 : 1);
      };
      process.once('SIGTERM', () => void shutdown('SIGTERM'));
      process.once('SIGINT', () => void shutdown('SIGINT'));
      await shim.start();
    });
  addServeTlsOptions(serve);

  const bootstrap = cli
    .command('bootstrap')
    .description('print a complete Envoy bootstrap for one role')
    .addOption(new Option('--role <role>', 'the Envoy role').choices([...roles]).makeOptionMandatory())
    .requiredOption('--node-id <id>', 'the Envoy node id (unique per Envoy)')
    .option('--node-cluster <name>', 'the Envoy node cluster')
    .option('--xds-address <host:port>', 'where the shim serves ADS', '127.0.0.1:18000')
    .option(
      '--listen-address <ip>',
      'originate: listen here instead of on Service clusterIPs; terminate: bind tunnels here only',
    )
    .option('--admin-address <host:port>', "Envoy's own admin address (default 127.0.0.1:9901, :9902, :9903 by role)")
    .option('--access-log <path>', 'file for the access logs of tunnel listeners')
    .option(
      '--relay-http-backend <ip:port>',
      'relay: where plain HTTP (non-CONNECT) requests go; without it they get 404',
    )
    .option('--delta', 'use incremental xDS (api_type DELTA_GRPC) instead of state of the world')
    .option('--identity <ns/sa>', "the node's identity claim (believed only by serve --insecure-identities)")
    .option('--sds <unix:PATH>', "take the node's certificates from this SDS server (a SPIRE agent's socket)")
    .addOption(new Option('--output <format>', 'yaml or json').choices(['yaml', 'json']).default('yaml'))
    .action((o) => {
      const bootstrap = buildBootstrap({
        identity: o.identity,
        sds: o.sds,
        delta: Boolean(o.delta),
        role: o.role as Role,
        nodeId: o.nodeId,
        nodeCluster: o.nodeCluster,
        xdsAddress: o.xdsAddress,
        listenAddress: o.listenAddress,
        adminAddress: o.adminAddress,
        accessLog: o.accessLog,
        relayHttpBackend: o.relayHttpBackend,
        xdsTls: bootstrapTlsFrom(o),
      });
      const problems = checkBootstrap(bootstrap);
      if (problems.length > 0) throw new Error(`generated bootstrap is invalid: ${problems.join('; ')}`);
      process.stdout.write(o.output === 'json' ? `${JSON.stringify(bootstrap, null, 2)}\n` : bootstrapYaml(bootstrap));
    });
  addBootstrapTlsOptions(bootstrap);

  cli
    .command('render')
    .description('print the resources a node of a role would be served, and every diagnostic; no server, no Envoy')
    .requiredOption('--source <spec>', 'file:PATH (a YAML file or folder)')
    .addOption(new Option('--role <role>', 'the node role').choices([...roles]).makeOptionMandatory())
    .option('--node-id <id>', 'shown in the output; the view depends on role and addresses only', 'render')
    .option('--listen-address <ip>', 'as in tunnel-shim bootstrap')
    .option('--access-log <path>', 'as in tunnel-shim bootstrap')
    .option('--relay-http-backend <ip:port>', 'as in tunnel-shim bootstrap')
    .addOption(
      new Option('--cluster-domain <domain>', 'Kubernetes cluster domain')
        .argParser(clusterDomain)
        .default('cluster.local'),
    )
    .addOption(
      new Option('--access-log-dir <dir>', 'as in tunnel-shim serve (repeatable)')
        .argParser(accessLogDir)
        .default([], 'none'),
    )
    .addOption(new Option('--output <format>', 'yaml or json').choices(['yaml', 'json']).default('yaml'))
    .action((o) => {
      const path = String(o.source).replace(/^file:/, '');
      if (!fs.existsSync(path)) throw new Error(`--source ${o.source}: ${path} does not exist`);
      const view = {
        role: o.role as Role,
        listenAddress: o.listenAddress,
        accessLog: o.accessLog,
        relayHttpBackend: o.relayHttpBackend,
      };
      const { resources, diagnostics } = render(new FileSource(path).read(), view, {
        clusterDomain: o.clusterDomain,
        accessLogDirs: o.accessLogDir,
      });
      const out = { node: o.nodeId, role: o.role, ...resources };
      process.stdout.write(
        o.output === 'json'
          ? `${JSON.stringify(out, null, 2)}\n`
          : YAML.stringify(out, { aliasDuplicateObjects: false }),
      );
      for (const line of diagnosticLines(diagnostics)) process.stderr.write(`${line}\n`);
      if (diagnostics.some((d) => d.severity === 'error')) process.exitCode = 1;
    });

  cli
    .command('import-envoyfilter')
    .description(
      'print the annotated Services and TCPRoutes equivalent to Istio EnvoyFilter tunnel patches, ' +
        'with a comment for each part that has no equivalent',
    )
    .argument('<files...>', 'YAML files with EnvoyFilter objects (other kinds are skipped)')
    .action((files: string[]) => {
      const objects = files.flatMap((file) => {
        if (!fs.existsSync(file)) throw new Error(`${file} does not exist`);
        const parsed = parseYamlObjects(file, fs.readFileSync(file, 'utf8'));
        for (const line of diagnosticLines(parsed.diagnostics)) process.stderr.write(`${line}\n`);
        if (parsed.broken) process.exitCode = 1;
        return parsed.objects;
      });
      const result = importEnvoyFilters(objects);
      for (const line of result.skipped) process.stderr.write(`note: ${line}\n`);
      for (const line of result.errors) process.stderr.write(`${line}\n`);
      process.stdout.write(printImport(result));
      if (result.errors.length > 0) process.exitCode = 1;
    });

  registerInject(cli);

  cli
    .command('certs')
    .description(
      'print a development CA and one identity Secret per --identity (kubernetes.io/tls: tls.crt, tls.key, ca.crt) ' +
        'as YAML for the file source: `tunnel-shim certs --identity shop/web > certs.yaml`',
    )
    .option('--trust-domain <domain>', 'the SPIFFE trust domain', 'cluster.local')
    .option('--identity <ns/sa>', 'an identity to issue (repeatable)', (v: string, all: string[]) => [...all, v], [])
    .option('--ca <file>', 'issue from the CA in this file (a previous output) instead of a new CA: rotation')
    .option(
      '--trust <file>',
      'also trust the CA in this file (repeatable): a CA rollover',
      (v: string, all: string[]) => [...all, v],
      [],
    )
    .option('--valid-hours <n>', 'identity certificate lifetime in hours', (v: string) => Number(v), 24 * 90)
    .action(
      async (opts: { trustDomain: string; identity: string[]; ca?: string; trust: string[]; validHours: number }) => {
        process.stdout.write(
          await (
            await import('./certs.js')
          ).certsYaml({
            trustDomain: opts.trustDomain,
            identities: opts.identity,
            ca: opts.ca,
            trust: opts.trust,
            validHours: opts.validHours,
          }),
        );
      },
    );

  cli
    .command('status')
    .description("what a running shim sent to each Envoy and what each did with it; with NODE, that node's resources")
    .argument('[node]', 'a node id: show its listeners, routes, clusters and endpoints')
    .option('--admin-address <host:port>', "the shim's admin address", '127.0.0.1:18080')
    .addOption(
      new Option(
        '--output <format>',
        'table (default), json, or yaml; with NODE, json and yaml give the full resources',
      )
        .choices(['table', 'json', 'yaml'])
        .default('table'),
    )
    .action(async (node: string | undefined, o) => {
      if (node === undefined) {
        const nodes = await adminGet<NodeStatus[]>(o.adminAddress, '/debug/nodes');
        process.stdout.write(o.output === 'table' ? statusTable(nodes) : formatData(nodes, o.output));
        return;
      }
      const config = await adminGet<NodeConfig>(o.adminAddress, `/debug/config?node=${encodeURIComponent(node)}`);
      process.stdout.write(o.output === 'table' ? nodeSummary(config) : formatData(nodeResources(config), o.output));
    });

  return cli;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (err) {
    process.stderr.write(`tunnel-shim: ${errorMessage(err)}\n`);
    process.exit(2);
  }
}
