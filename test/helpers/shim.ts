// The shim in-process on free loopback ports, serving a temporary folder of YAML files.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Shim, type ShimOptions } from '../../src/shim.js';
import { FileSource } from '../../src/sources/file.js';
import type { WriteBudgetOptions } from '../../src/xds/budget.js';

export interface TestShim {
  shim: Shim;
  dir: string;
  xdsAddress: string;
  adminUrl: string;
  write(file: string, yaml: string): void;
  remove(file: string): void;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startShim(
  files: Record<string, string> = {},
  options: {
    logLevel?: string;
    xdsPort?: number;
    logTo?: pino.DestinationStream;
    maxConnectionAgeMs?: number;
    maxConnectionAgeGraceMs?: number;
    accessLogDirs?: string[];
    writeBudget?: WriteBudgetOptions;
    /** xDS on this address instead of 127.0.0.1 (e.g. a namespace's host end) */ xdsHost?: string;
    rolloutTimeoutMs?: number;
    /** mTLS settings of `serve` (trust domain, --mtls, --insecure-identities, --sds). */
    tls?: Pick<
      ShimOptions,
      'trustDomain' | 'mtlsDefault' | 'insecureIdentities' | 'sds' | 'sdsNames' | 'expiryWarningMs'
    >;
    xdsTls?: ShimOptions['xdsTls'];
    peers?: ShimOptions['peers'];
  } = {},
): Promise<TestShim> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shim-'));
  for (const [name, yaml] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), yaml);
  const logger = pino({ level: options.logLevel ?? process.env.SHIM_LOG_LEVEL ?? 'silent' }, options.logTo);
  const make = (xdsPort: number, adminPort: number) =>
    new Shim({
      source: new FileSource(dir, logger, 20),
      xdsAddress: `${options.xdsHost ?? '127.0.0.1'}:${xdsPort}`,
      adminAddress: `127.0.0.1:${adminPort}`,
      logger,
      maxConnectionAgeMs: options.maxConnectionAgeMs,
      maxConnectionAgeGraceMs: options.maxConnectionAgeGraceMs,
      accessLogDirs: options.accessLogDirs,
      writeBudget: options.writeBudget,
      rolloutTimeoutMs: options.rolloutTimeoutMs,
      ...options.tls,
      xdsTls: options.xdsTls,
      peers: options.peers,
    });
  let shim = make(options.xdsPort ?? 0, 0);
  await shim.start();
  const handle: TestShim = {
    shim,
    dir,
    xdsAddress: `${options.xdsHost ?? '127.0.0.1'}:${shim.xdsPort}`,
    adminUrl: `http://127.0.0.1:${shim.adminPort}`,
    write: (file, yaml) => {
      // Write then rename, as editors and ConfigMap updates do: the source never sees half a file.
      const tmp = path.join(dir, `.${file}.tmp`);
      fs.writeFileSync(tmp, yaml);
      fs.renameSync(tmp, path.join(dir, file));
    },
    remove: (file) => fs.rmSync(path.join(dir, file)),
    restart: async () => {
      await shim.stop();
      shim = make(Number(handle.xdsAddress.split(':')[1]), Number(handle.adminUrl.split(':')[2]));
      await shim.start();
      handle.shim = shim;
    },
    stop: async () => {
      await handle.shim.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return handle;
}
