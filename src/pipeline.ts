// sources -> model -> cache. A lone source event is applied at once; a burst becomes one rebuild:
// 20 ms of quiet, 100 ms at most. (A longer quiet time starves under a steady stream of events: at 20
// changes/s a 50 ms quiet time is never reached and every change waits for the maximum delay.) When
// events come within the maximum delay of each other and find the process busy (mostly handing the last
// change to every stream and reading their ACKs), they wait for the maximum delay: one rebuild and one
// fan-out then carry several changes, instead of a fan-out per change queueing behind the last (bench,
// 20 changes/s to 1,100 delta streams: p99 1.1-1.6 s at a full core before, 0.56-0.65 s at 0.82-0.89
// cores with). A stuck Envoy does not make the loop busy.
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { ModelBuilder } from './model/build.js';
import { formatDiagnostic, type Diagnostic } from './model/diagnostics.js';
import type { Model, ModelOptions } from './model/tunnel.js';
import type { Source, SourceState } from './sources/source.js';
import type { SnapshotCache } from './cache/cache.js';

/** Where models go: the cache itself, or the rollout stage in front of it (cache/rollout-stage.ts). */
export type ModelSink = Pick<SnapshotCache, 'setModel' | 'diagnostics'>;

export interface PipelineOptions extends ModelOptions {
  /** Quiet time that ends a burst; 0 applies every event at once (and never waits because busy). */
  quietMs?: number;
  maxDelayMs?: number;
}

/** The share of time the event loop worked since the last event above which events wait (see the top). */
const busyShare = 0.75;

export class Pipeline {
  model?: Model;
  sourceDiagnostics: Diagnostic[] = [];
  synced = false;
  rebuilds = 0;
  /** States delivered by the source (each file event burst, each watch event). */
  sourceEvents = 0;
  /** When the first source event not yet applied arrived (epoch ms): the start of convergence. */
  private firstPendingAt?: number;
  private pending?: SourceState;
  private quietTimer?: NodeJS.Timeout;
  private maxTimer?: NodeJS.Timeout;
  private reported = new Set<string>();
  private readonly changeListeners = new Set<(model: Model) => void>();
  private readonly diagnosticListeners = new Set<(fresh: Diagnostic[]) => void>();
  /** This pipeline's model builds, each reusing what the last one built (nothing is shared with another). */
  private readonly builder: ModelBuilder;

  constructor(
    private readonly source: Source,
    private readonly cache: ModelSink,
    private readonly options: PipelineOptions,
    private readonly logger: Logger,
  ) {
    this.builder = new ModelBuilder(options);
  }

  async start(): Promise<void> {
    await this.source.start((state) => this.schedule(state));
  }

  async stop(): Promise<void> {
    clearTimeout(this.quietTimer);
    clearTimeout(this.maxTimer);
    await this.source.stop();
  }

  onChange(listener: (model: Model) => void): void {
    this.changeListeners.add(listener);
  }

  /** Called with the diagnostics that appeared since the last rebuild (each problem once). */
  onDiagnostics(listener: (fresh: Diagnostic[]) => void): void {
    this.diagnosticListeners.add(listener);
  }

  diagnostics(): Diagnostic[] {
    return [...this.sourceDiagnostics, ...(this.model?.diagnostics ?? []), ...this.cache.diagnostics()];
  }

  private lastApply = -Infinity;

  private schedule(state: SourceState): void {
    if (state.complete === false) {
      // Problems of a source that has not synced yet (a refused list): shown, nothing is served.
      this.sourceDiagnostics = state.diagnostics;
      return this.report();
    }
    this.pending = state;
    this.sourceEvents++;
    this.firstPendingAt ??= Date.now();
    // The first state goes out at once: readiness should not wait for a debounce. So does a change
    // after a quiet spell (leading edge): a lone change is not delayed; a burst is coalesced below.
    if (!this.synced) return this.apply();
    const quietMs = this.options.quietMs ?? 20;
    const busy = quietMs > 0 && this.busyInBurst(this.options.maxDelayMs ?? 100);
    if (!this.maxTimer && !busy && performance.now() - this.lastApply >= quietMs) return this.apply();
    clearTimeout(this.quietTimer);
    if (!busy) this.quietTimer = setTimeout(() => this.apply(), quietMs);
    this.maxTimer ??= setTimeout(() => this.apply(), this.options.maxDelayMs ?? 100);
  }

  /** Event loop utilisation at the last source event or the end of the last rebuild, whichever came later. */
  private loopMark = performance.eventLoopUtilization();
  private loopMarkAt = performance.now();

  /**
   * Whether this event is part of a burst (the last event or rebuild was under `withinMs` ago) and the
   * event loop worked for most of the time since. An event after a longer gap is a lone change: it goes
   * at once even if the loop was busy until now (still reading the last change's ACKs), so one slow
   * change does not add the maximum delay to the next.
   */
  private busyInBurst(withinMs: number): boolean {
    const now = performance.eventLoopUtilization();
    const { utilization } = performance.eventLoopUtilization(now, this.loopMark);
    const at = performance.now();
    const inBurst = at - this.loopMarkAt < withinMs;
    this.loopMark = now;
    this.loopMarkAt = at;
    return inBurst && utilization >= busyShare;
  }

  private apply(): void {
    clearTimeout(this.quietTimer);
    clearTimeout(this.maxTimer);
    this.maxTimer = undefined;
    const state = this.pending;
    if (!state) return;
    this.pending = undefined;
    const started = performance.now();
    this.sourceDiagnostics = state.diagnostics;
    this.model = this.builder.build(state.objects);
    const modelMs = performance.now() - started;
    this.cache.setModel(this.model, this.firstPendingAt);
    this.firstPendingAt = undefined;
    this.synced = true;
    this.rebuilds++;
    this.report();
    this.logger.info(
      {
        tunnels: this.model.tunnels.length,
        objects: state.objects.length,
        ms: Math.round(performance.now() - started),
        modelMs: Math.round(modelMs),
      },
      'configuration rebuilt',
    );
    for (const listener of this.changeListeners) listener(this.model);
    // Quiet is counted from the end of a rebuild: events that queued up while it ran are coalesced into
    // the next one, so a source faster than the rebuilds makes them bigger, not more (no growing backlog).
    this.lastApply = performance.now();
    this.loopMark = performance.eventLoopUtilization();
    this.loopMarkAt = this.lastApply;
  }

  /** Reports diagnostics that appeared since the last report (also after a new node view appeared). */
  reportNow(): void {
    this.report();
  }

  /** Logs each diagnostic once, when it first appears. */
  private report(): void {
    const now = new Set<string>();
    const fresh: Diagnostic[] = [];
    for (const d of this.diagnostics()) {
      const line = formatDiagnostic(d);
      now.add(line);
      if (this.reported.has(line)) continue;
      fresh.push(d);
      const fields = { reason: d.reason, object: `${d.object.kind} ${d.object.namespace}/${d.object.name}` };
      if (d.severity === 'error') this.logger.error(fields, line);
      else this.logger.warn(fields, line);
    }
    this.reported = now;
    if (fresh.length > 0) for (const listener of this.diagnosticListeners) listener(fresh);
  }
}
