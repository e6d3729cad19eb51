// TLS for the xDS port: the shim's certificate and key, and the CA its clients must present a certificate
// from, read from files and read again when they change, so the shim's certificate rotates without a restart.
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs/promises';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';

type CertificateProvider = grpc.experimental.CertificateProvider;
type IdentityUpdate = grpc.experimental.IdentityCertificateUpdate;
type CaUpdate = grpc.experimental.CaCertificateUpdate;

export interface XdsTlsOptions {
  certFile: string;
  keyFile: string;
  /** With it, every connection must present a certificate from this CA (mutual TLS). */
  clientCaFile?: string;
  /** How often the files are read again (default 1 s; a read is three small files). */
  refreshMs?: number;
}

export class TlsFilesError extends Error {}

interface Loaded {
  identity: IdentityUpdate;
  ca?: CaUpdate;
  /** The certificate's serial, for the log. */
  serial: string;
}

/**
 * grpc-js's own FileWatcherCertificateProvider publishes "no credentials" when a read fails or a
 * certificate and key that do not match are read mid-rotation, and the server then drops every new
 * connection until the next good read. This provider checks the three files as a whole (they parse,
 * the key matches the certificate) and publishes only a good set: a bad one is logged and the last
 * good one stays. Files are polled, which also follows Kubernetes' symlink swap of a mounted Secret.
 */
export class TlsFilesProvider implements CertificateProvider {
  private current?: Loaded;
  private lastRead = '';
  private lastError = '';
  private timer?: NodeJS.Timeout;
  private reading = false;
  private readonly identityListeners = new Set<(u: IdentityUpdate | null) => void>();
  private readonly caListeners = new Set<(u: CaUpdate | null) => void>();

  constructor(
    private readonly options: XdsTlsOptions,
    private readonly logger: Logger,
  ) {}

  /** Reads the files once; throws TlsFilesError naming the file when they cannot serve. */
  async load(): Promise<void> {
    const { loaded, fingerprint } = await this.read();
    this.current = loaded;
    this.lastRead = fingerprint;
    this.logger.info({ serial: loaded.serial, cert: this.options.certFile }, 'xDS TLS certificate loaded');
  }

  /** Starts polling the files (the server's first watcher calls it through the listeners). */
  private watch(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.refresh(), this.options.refreshMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async refresh(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      const { loaded, fingerprint } = await this.read(this.lastRead);
      this.lastError = '';
      if (fingerprint === this.lastRead) return;
      this.lastRead = fingerprint;
      this.current = loaded;
      this.logger.info({ serial: loaded.serial, cert: this.options.certFile }, 'xDS TLS certificate reloaded');
      for (const listener of this.identityListeners) listener(loaded.identity);
      if (loaded.ca) for (const listener of this.caListeners) listener(loaded.ca);
    } catch (err) {
      // The same problem is logged once, not every second.
      if (errorMessage(err) !== this.lastError)
        this.logger.error({ err: errorMessage(err) }, 'xDS TLS files not reloaded; serving the last good certificate');
      this.lastError = errorMessage(err);
    } finally {
      this.reading = false;
    }
  }

  private async read(unchanged?: string): Promise<{ loaded: Loaded; fingerprint: string }> {
    const { certFile, keyFile, clientCaFile } = this.options;
    const [cert, key, ca] = await Promise.all([
      readOrThrow(certFile, '--xds-tls-cert'),
      readOrThrow(keyFile, '--xds-tls-key'),
      clientCaFile === undefined ? undefined : readOrThrow(clientCaFile, '--xds-client-ca'),
    ]);
    const fingerprint = [cert, key, ca ?? ''].map((b) => b.toString('base64')).join('|');
    if (fingerprint === unchanged) return { loaded: this.current!, fingerprint };
    const fail = (message: string) => new TlsFilesError(message);
    let serial: string;
    try {
      serial = new X509Certificate(cert).serialNumber;
    } catch (err) {
      throw fail(`--xds-tls-cert ${certFile}: not a PEM certificate (${errorMessage(err)})`);
    }
    if (ca) {
      try {
        new X509Certificate(ca);
      } catch (err) {
        throw fail(`--xds-client-ca ${clientCaFile}: not a PEM certificate (${errorMessage(err)})`);
      }
    }
    try {
      // Fails when the key does not belong to the certificate (e.g. one of them not yet replaced).
      tls.createSecureContext({ cert, key, ca });
    } catch (err) {
      throw fail(`--xds-tls-key ${keyFile} with --xds-tls-cert ${certFile}: ${errorMessage(err)}`);
    }
    const loaded: Loaded = { identity: { certificate: cert, privateKey: key }, serial };
    if (ca) loaded.ca = { caCertificate: ca };
    return { loaded, fingerprint };
  }

  addIdentityCertificateListener(listener: (u: IdentityUpdate | null) => void): void {
    this.identityListeners.add(listener);
    this.watch();
    if (this.current) process.nextTick(listener, this.current.identity);
  }

  removeIdentityCertificateListener(listener: (u: IdentityUpdate | null) => void): void {
    this.identityListeners.delete(listener);
    if (this.identityListeners.size === 0 && this.caListeners.size === 0) this.stop();
  }

  addCaCertificateListener(listener: (u: CaUpdate | null) => void): void {
    this.caListeners.add(listener);
    this.watch();
    if (this.current?.ca) process.nextTick(listener, this.current.ca);
  }

  removeCaCertificateListener(listener: (u: CaUpdate | null) => void): void {
    this.caListeners.delete(listener);
    if (this.identityListeners.size === 0 && this.caListeners.size === 0) this.stop();
  }
}

/** Plaintext without TLS options; TLS (mutual with a client CA) with them, after a first good read. */
export async function xdsServerCredentials(
  options: XdsTlsOptions | undefined,
  logger: Logger,
): Promise<{ credentials: grpc.ServerCredentials; stop(): void }> {
  if (!options) return { credentials: grpc.ServerCredentials.createInsecure(), stop: () => {} };
  const provider = new TlsFilesProvider(options, logger);
  await provider.load();
  const mutual = options.clientCaFile !== undefined;
  if (!mutual)
    logger.warn('xDS over TLS without --xds-client-ca: clients are not authenticated and may claim any node');
  // grpc-js 1.14 names the parameters (ca, identity) but hands them on as (identity, ca): one provider serves both.
  const credentials = grpc.experimental.createCertificateProviderServerCredentials(
    provider,
    mutual ? provider : null,
    mutual,
  );
  return { credentials, stop: () => provider.stop() };
}

async function readOrThrow(file: string, flag: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    throw new TlsFilesError(`${flag} ${file}: ${errorMessage(err)}`);
  }
}
