// The command-line flags of xDS over (mutual) TLS: `serve` (the shim's side) and `bootstrap` (an Envoy's).
import path from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { PeerAuthOptions } from '../xds/peer-identity.js';
import type { XdsTlsOptions } from '../xds/tls-credentials.js';
import type { XdsTlsBootstrap } from './bootstrap.js';

const spiffeId = /^spiffe:\/\/[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)+$/;

function spiffeList(value: string): string[] {
  const ids = value.split(',').map((id) => id.trim());
  const bad = ids.find((id) => !spiffeId.test(id));
  if (bad !== undefined)
    throw new InvalidArgumentError(`${JSON.stringify(bad)} is not a SPIFFE ID (spiffe://DOMAIN/PATH)`);
  return ids;
}

export function addServeTlsOptions(command: Command): Command {
  return command
    .option('--xds-tls-cert <file>', "the shim's certificate (PEM) for TLS on the xDS port; read again when it changes")
    .option('--xds-tls-key <file>', 'its private key (PEM)')
    .option(
      '--xds-client-ca <file>',
      'require every xDS client to present a certificate from this CA (PEM); its SPIFFE ID binds the node it may be',
    )
    .addOption(
      new Option(
        '--csds-identities <spiffe-ids>',
        'with --xds-client-ca: the comma-separated SPIFFE IDs that may read node status over CSDS (default: none)',
      ).argParser(spiffeList),
    );
}

export function serveTlsFrom(o: {
  xdsTlsCert?: string;
  xdsTlsKey?: string;
  xdsClientCa?: string;
  trustDomain: string;
  csdsIdentities?: string[];
}): { xdsTls?: XdsTlsOptions; peers?: Omit<PeerAuthOptions, 'pods'> } {
  if ((o.xdsTlsCert === undefined) !== (o.xdsTlsKey === undefined))
    throw new Error('--xds-tls-cert and --xds-tls-key go together');
  if (o.xdsClientCa !== undefined && o.xdsTlsCert === undefined)
    throw new Error(
      '--xds-client-ca needs --xds-tls-cert and --xds-tls-key (the shim must speak TLS to check clients)',
    );
  if (o.csdsIdentities && o.xdsClientCa === undefined)
    throw new Error('--csds-identities needs --xds-client-ca (identities come from client certificates)');
  if (o.xdsTlsCert === undefined) return {};
  return {
    xdsTls: { certFile: o.xdsTlsCert, keyFile: o.xdsTlsKey!, clientCaFile: o.xdsClientCa },
    peers: { trustDomain: o.trustDomain, csdsIdentities: o.csdsIdentities },
  };
}

export function addBootstrapTlsOptions(command: Command): Command {
  return command
    .option(
      '--xds-tls <dir>',
      "connect to the shim over mutual TLS with DIR's tls.crt, tls.key and ca.crt (a mounted kubernetes.io/tls Secret)",
    )
    .option(
      '--xds-server-identity <spiffe-id>',
      "with --xds-tls: the SPIFFE ID the shim's certificate must carry",
      'spiffe://cluster.local/ns/tunnel-shim/sa/tunnel-shim',
    );
}

export function bootstrapTlsFrom(o: { xdsTls?: string; xdsServerIdentity: string }): XdsTlsBootstrap | undefined {
  if (o.xdsTls === undefined) return undefined;
  if (!spiffeId.test(o.xdsServerIdentity))
    throw new Error(
      `--xds-server-identity ${JSON.stringify(o.xdsServerIdentity)}: not a SPIFFE ID (spiffe://DOMAIN/PATH)`,
    );
  // Envoy resolves relative file names against its own working directory: make them absolute here.
  const dir = path.resolve(o.xdsTls);
  return {
    certFile: path.join(dir, 'tls.crt'),
    keyFile: path.join(dir, 'tls.key'),
    caFile: path.join(dir, 'ca.crt'),
    serverIdentity: o.xdsServerIdentity,
  };
}
