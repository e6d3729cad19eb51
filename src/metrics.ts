// Prometheus metrics for the admin port's /metrics. Protocol code stays free of metrics: everything is
// observed through the ADS server's `observe` hooks or read from the pipeline and cache at scrape time.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { certificateExpiryGauge } from './metrics-tls.js';
import type { Pipeline } from './pipeline.js';
import { apiResourceKind } from './sources/kube-access.js';
import { roles } from './translate/view.js';
import type { SnapshotCache } from './cache/cache.js';
import type { XdsServerOptions } from './xds/server.js';
import { streamStatus } from './xds/status.js';
import type { StreamStatus } from './xds/stream-status.js';
import type { RolloutStage } from './cache/rollout-stage.js';
import type { Settled } from './cache/rollout.js';

const prefix = 'tunnel_shim_';
// From a local push (milliseconds) to a slow Envoy warming a listener (tens of seconds).
const secondsBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface MetricsSources {
  pipeline: Pipeline;
  cache: SnapshotCache;
  /** Every open ADS stream, state of the world and delta. */
  streams: () => Iterable<Pick<StreamStatus, 'node'>>;
  rollout?: RolloutStage;
}

/**
 * A counter by resource type, kept in a plain map and handed to prom-client when scraped: it counts
 * per stream per change (1,000 times a change), and prom-client hashes the labels on every inc.
 */
function typeCounter(registry: Registry, name: string, help: string): { inc(type: string, n?: number): void } {
  const counts = new Map<string, number>();
  new Counter({
    name,
    help,
    labelNames: ['type'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [type, n] of counts) this.inc({ type }, n);
    },
  });
  return { inc: (type, n = 1) => void counts.set(type, (counts.get(type) ?? 0) + n) };
}

export class Metrics {
  readonly registry = new Registry();
  private readonly pushes = typeCounter(
    this.registry,
    `${prefix}xds_pushes_total`,
    'Discovery responses sent, by resource type',
  );
  private readonly resourcesSent = typeCounter(
    this.registry,
    `${prefix}xds_resources_sent_total`,
    'Resources carried by discovery responses, by type',
  );
  private readonly acks = typeCounter(this.registry, `${prefix}xds_acks_total`, 'Responses ACKed by nodes, by type');
  private readonly nacks = new Counter({
    name: `${prefix}xds_nacks_total`,
    help: 'Responses NACKed (rejected) by nodes, by type',
    labelNames: ['type'],
    registers: [this.registry],
  });
  private readonly staleNonces = new Counter({
    name: `${prefix}xds_stale_nonces_total`,
    help: 'Requests ignored because they answered an older nonce, by type',
    labelNames: ['type'],
    registers: [this.registry],
  });
  private readonly pushSeconds = new Histogram({
    name: `${prefix}xds_push_seconds`,
    help: 'From a source change to the discovery response carrying it being written to a node, by type',
    labelNames: ['type'],
    buckets: secondsBuckets,
    registers: [this.registry],
  });
  private readonly convergenceSeconds = new Histogram({
    name: `${prefix}xds_convergence_seconds`,
    help: 'From a source change to a node ACKing the response that carried it, by type',
    labelNames: ['type'],
    buckets: secondsBuckets,
    registers: [this.registry],
  });
  private readonly connections = new Counter({
    name: `${prefix}xds_streams_opened_total`,
    help: 'ADS streams opened by nodes, by role',
    labelNames: ['role'],
    registers: [this.registry],
  });
  private readonly stuckClosed = new Counter({
    name: `${prefix}xds_stuck_streams_closed_total`,
    help: 'ADS streams closed because the node read nothing for --stuck-stream-timeout',
    registers: [this.registry],
  });
  private readonly replaced = new Counter({
    name: `${prefix}xds_streams_replaced_total`,
    help: 'ADS streams closed because a newer stream claimed the same node id',
    registers: [this.registry],
  });

  private readonly rolloutHoldSeconds = new Histogram({
    name: `${prefix}rollout_hold_seconds`,
    help:
      'How long make-before-break held an endpoint change: announce (a new endpoint, until terminators ACK it), ' +
      'withdraw (a removed one, until originators ACK its removal)',
    labelNames: ['phase'],
    buckets: secondsBuckets,
    registers: [this.registry],
  });
  private readonly rolloutTimeouts = new Counter({
    name: `${prefix}rollout_timeouts_total`,
    help: "Endpoint holds that ended at the make-before-break bound without every Envoy's ACK, by phase",
    labelNames: ['phase'],
    registers: [this.registry],
  });

  constructor(sources: MetricsSources) {
    collectDefaultMetrics({ register: this.registry, prefix });
    certificateExpiryGauge(this.registry, prefix, sources.pipeline);
    // Shown as 0 before the first timeout, so an alert on it has a series from the start.
    for (const phase of ['announce', 'withdraw']) this.rolloutTimeouts.inc({ phase }, 0);
    new Gauge({
      name: `${prefix}rollout_holds`,
      help: 'Endpoints held back by make-before-break now, by phase',
      labelNames: ['phase'],
      registers: [this.registry],
      collect() {
        const counts = { announce: 0, withdraw: 0 };
        for (const h of sources.rollout?.holds() ?? []) counts[h.phase]++;
        for (const [phase, count] of Object.entries(counts)) this.set({ phase }, count);
      },
    });
    new Gauge({
      name: `${prefix}connected_proxies`,
      help: 'Envoys with an open ADS stream, by role',
      labelNames: ['role'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const role of roles) this.set({ role }, 0);
        for (const s of sources.streams()) this.inc({ role: s.node.view.role });
      },
    });
    new Gauge({
      name: `${prefix}resources`,
      help: 'Distinct resources currently served to at least one node, by type',
      labelNames: ['type'],
      registers: [this.registry],
      collect() {
        for (const [type, count] of Object.entries(sources.cache.resourceCounts())) this.set({ type }, count);
      },
    });
    // Counters the pipeline keeps itself, read at scrape time.
    new Counter({
      name: `${prefix}source_events_total`,
      help: 'States delivered by the source (file events, watch events)',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(sources.pipeline.sourceEvents);
      },
    });
    new Counter({
      name: `${prefix}rebuilds_total`,
      help: 'Model rebuilds (each debounced burst of source events)',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(sources.pipeline.rebuilds);
      },
    });
    new Gauge({
      name: `${prefix}diagnostics`,
      help:
        'Current problems with the input or generated resources, by severity (source errors such as ' +
        'unparseable files included)',
      labelNames: ['severity'],
      registers: [this.registry],
      collect() {
        const counts = { error: 0, warning: 0 };
        for (const d of sources.pipeline.diagnostics()) counts[d.severity]++;
        for (const [severity, count] of Object.entries(counts)) this.set({ severity }, count);
      },
    });
    new Gauge({
      name: `${prefix}source_errors`,
      help: 'Current errors reading the source itself (files that do not read or parse)',
      registers: [this.registry],
      collect() {
        this.set(sources.pipeline.sourceDiagnostics.filter((d) => d.severity === 'error').length);
      },
    });
    new Gauge({
      name: `${prefix}source_access_denied`,
      help: 'Requests the API server currently refuses the source (401/403), by verb and resource (namespaces summed)',
      labelNames: ['verb', 'resource'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const d of sources.pipeline.sourceDiagnostics) {
          if (d.object.kind === apiResourceKind) this.inc({ verb: String(d.path[0]), resource: d.object.name });
        }
      },
    });
  }

  /** A make-before-break hold ended (cache/rollout.ts). */
  rolloutSettled(s: Settled): void {
    this.rolloutHoldSeconds.observe({ phase: s.phase }, s.heldMs / 1000);
    if (s.timedOut) this.rolloutTimeouts.inc({ phase: s.phase });
  }

  /** Hooks for XdsServerOptions.observe: the same for state-of-the-world and delta streams. */
  observer(): NonNullable<XdsServerOptions['observe']> {
    return {
      connected: (s) => this.connections.inc({ role: s.node.view.role }),
      cut: () => this.stuckClosed.inc(),
      replaced: () => this.replaced.inc(),
      sent: (s, kind, _version, _nonce, count) => {
        this.pushes.inc(kind);
        this.resourcesSent.inc(kind, count);
        const changedAt = streamStatus(s).changedAt(kind);
        if (changedAt !== undefined) this.pushSeconds.observe({ type: kind }, (Date.now() - changedAt) / 1000);
      },
      decided: (s, kind, decision) => {
        if (decision.kind === 'stale') this.staleNonces.inc({ type: kind });
        else if (decision.kind === 'nack') this.nacks.inc({ type: kind });
        else if (decision.kind === 'ack') {
          this.acks.inc(kind);
          // The stream clears changedAt once answered, so each change is observed once per node.
          const changedAt = streamStatus(s).changedAt(kind);
          if (changedAt !== undefined) this.convergenceSeconds.observe({ type: kind }, (Date.now() - changedAt) / 1000);
        }
      },
    };
  }

  contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
