// The running shim: source -> pipeline -> cache -> ADS server, plus the admin endpoint.
import type http from 'node:http';
import type { Logger } from 'pino';
import { createAdminServer, insecureIdentitiesWarning, listen } from './admin/http.js';
import type { MtlsMode } from './model/mtls.js';
import { Pipeline } from './pipeline.js';
import type { EventRecorder } from './sources/kube-events.js';
import type { Source } from './sources/source.js';
import { SnapshotCache } from './cache/cache.js';
import { XdsServer, type XdsStream } from './xds/server.js';
import type { WriteBudgetOptions } from './xds/budget.js';
import { RolloutStage } from './cache/rollout-stage.js';
import { defaultModelOptions } from './model/tunnel.js';
import { Metrics } from './metrics.js';
import { PodOwnerIndex } from './pod-owners.js';
import type { PeerAuthOptions } from './xds/peer-identity.js';
import type { XdsTlsOptions } from './xds/tls-credentials.js';
import { translate } from './translate/index.js';

export interface ShimOptions {
  source: Source;
  xdsAddress: string;
  adminAddress: string;
  clusterDomain?: string;
  /** Per-Service access logs only under these directories (see ModelOptions.accessLogDirs). */
  accessLogDirs?: readonly string[];
  logger: Logger;
  /** Turns diagnostics on API objects into Kubernetes Events. */
  events?: EventRecorder;
  /** See XdsServerOptions. */
  maxConnectionAgeMs?: number;
  /** See XdsServerOptions.writeBudget (tests use a small one). */
  writeBudget?: WriteBudgetOptions;
  maxConnectionAgeGraceMs?: number;
  /** How long an endpoint change waits for Envoys' ACKs before it goes ahead (default 5 s). */
  rolloutTimeoutMs?: number;
  /** SPIFFE trust domain (`serve --trust-domain`). */
  trustDomain?: string;
  /** mTLS mode of Services without tunnel-shim.io/mtls (`serve --mtls`). */
  mtlsDefault?: MtlsMode;
  /** `serve --insecure-identities`: believe identities nodes claim in their metadata. */
  insecureIdentities?: boolean;
  /** `serve --sds unix:PATH` and `--sds-names`: every node's certificates come from that SDS server. */
  sds?: string;
  sdsNames?: [string, string];
  /** A certificate this close to its end is a warning. */
  expiryWarningMs?: number;
  /** TLS on the xDS port; with a client CA, each stream's certificate binds its node (`peers`). */
  xdsTls?: XdsTlsOptions;
  peers?: Omit<PeerAuthOptions, 'pods'>;
}

export class Shim {
  readonly cache = new SnapshotCache(translate);
  readonly pipeline: Pipeline;
  /** Make-before-break across Envoys: between the pipeline and the cache. */
  readonly rollout: RolloutStage;
  readonly xds: XdsServer;
  readonly metrics: Metrics;
  private admin?: http.Server;
  xdsPort = 0;
  adminPort = 0;

  constructor(private readonly options: ShimOptions) {
    const modelOptions = {
      clusterDomain: options.clusterDomain ?? defaultModelOptions.clusterDomain,
      accessLogDirs: options.accessLogDirs,
      trustDomain: options.trustDomain,
      mtlsDefault: options.mtlsDefault,
      expiryWarningMs: options.expiryWarningMs,
      externalSds: options.sds !== undefined,
    };
    this.rollout = new RolloutStage(this.cache, () => [...this.xds.streams, ...this.xds.deltaStreams], {
      timeoutMs: options.rolloutTimeoutMs,
      onSettled: (s) => this.metrics.rolloutSettled(s),
      logger: options.logger,
    });
    // With client certificates, a node's Pod (by name or IP) must run as the certificate's service account.
    const pods = options.xdsTls?.clientCaFile !== undefined ? new PodOwnerIndex() : undefined;
    const source = pods ? pods.watching(options.source) : options.source;
    this.pipeline = new Pipeline(source, this.rollout, modelOptions, options.logger);
    if (options.events) this.pipeline.onDiagnostics((fresh) => options.events!.record(fresh));
    const streams = () => [...this.xds.streams, ...this.xds.deltaStreams];
    this.metrics = new Metrics({ pipeline: this.pipeline, cache: this.cache, streams, rollout: this.rollout });
    const observe = this.metrics.observer();
    const poke = (stream?: XdsStream) => this.rollout.poke(stream);
    this.xds = new XdsServer({
      address: options.xdsAddress,
      cache: this.cache,
      logger: options.logger,
      maxConnectionAgeMs: options.maxConnectionAgeMs,
      maxConnectionAgeGraceMs: options.maxConnectionAgeGraceMs,
      writeBudget: options.writeBudget,
      identity: {
        trustDomain: options.trustDomain ?? 'cluster.local',
        insecureIdentities: options.insecureIdentities,
        sds: options.sds,
        sdsNames: options.sdsNames,
      },
      tls: options.xdsTls,
      peers: pods ? { trustDomain: options.trustDomain ?? 'cluster.local', ...options.peers, pods } : undefined,
      observe: {
        ...observe,
        connected: (stream) => {
          observe.connected?.(stream);
          // A new node view may bring translation diagnostics of its own: report them when it connects.
          this.pipeline.reportNow();
          poke();
        },
        disconnected: () => poke(),
        decided: (stream, ...rest) => {
          observe.decided?.(stream, ...rest);
          poke(stream);
        },
      },
    });
  }

  async start(): Promise<void> {
    const { pipeline, cache, xds, metrics, rollout } = this;
    const { logger, insecureIdentities } = this.options;
    if (insecureIdentities) logger.warn(insecureIdentitiesWarning.trim());
    this.admin = createAdminServer({ pipeline, cache, xds, logger, metrics, rollout, insecureIdentities });
    this.adminPort = (await listen(this.admin, this.options.adminAddress)).port;
    // Sync the source before serving, so no Envoy ever gets a partial start-up snapshot.
    await this.pipeline.start();
    this.xdsPort = await this.xds.start();
    this.options.logger.info(
      {
        xds: `${hostOf(this.options.xdsAddress)}:${this.xdsPort}`,
        admin: `${hostOf(this.options.adminAddress)}:${this.adminPort}`,
        source: this.options.source.describe(),
      },
      'tunnel-shim serving',
    );
  }

  async stop(): Promise<void> {
    await this.xds.stop();
    await this.pipeline.stop();
    this.rollout.stop();
    await new Promise<void>((resolve) => (this.admin ? this.admin.close(() => resolve()) : resolve()));
    this.admin?.closeAllConnections();
  }
}

function hostOf(address: string): string {
  return address.slice(0, address.lastIndexOf(':'));
}
