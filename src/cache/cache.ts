// The snapshot cache: one snapshot per distinct node view, rebuilt when the model changes, shared by
// every stream with that view. Translation is handed in (the edges pass translate/index.ts); the
// server meets the cache only through `watch` (watch.ts).
import type { ResourceObject } from '../envoy/encode.js';
import { viewKey, type NodeView } from '../envoy/node-view.js';
import { pushOrder, type ResourceKind } from '../envoy/protos.js';
import type { Diagnostic } from '../model/diagnostics.js';
import type { Model, Tunnel } from '../model/tunnel.js';
import type { PieceMemo } from '../translate/memo.js';
import { objectOf, type Translation } from '../translate/resources.js';
import { redactSecret, secretsChanged } from '../translate/secrets.js';
import { changedTunnels, concerns, type TunnelIndex } from './changes.js';
import { TunnelPieces } from './pieces.js';
import { ResourceEncoder, type Snapshot, type TypeSnapshot } from './snapshot.js';
import type { ConfigWatcher, Watch } from './watch.js';

/** Streams told per turn of the event loop when a change reaches many of them. */
const fanOutSlice = 64;

/** A view's resources from a model; `pieces` keeps per-tunnel pieces between calls (translate/memo.ts). */
export type Translate = (model: Model, view: NodeView, pieces: PieceMemo) => Translation;

interface ViewEntry {
  view: NodeView;
  snapshot?: Snapshot;
  diagnostics: Diagnostic[];
  listeners: Set<() => void>;
}

/**
 * Terminators are served one model, originators and relays another: the same tunnels, but while an
 * endpoint moves each side sees what make-before-break allows it (rollout.ts). Without a rollout
 * stage both sides get the same model.
 */
export type Side = 'terminate' | 'originate';
const sides: readonly Side[] = ['terminate', 'originate'];

export function sideOf(view: NodeView): Side {
  return view.role === 'terminate' ? 'terminate' : 'originate';
}

export class SnapshotCache implements ConfigWatcher {
  private readonly views = new Map<string, ViewEntry>();
  private readonly models: Partial<Record<Side, Model>> = {};
  private changedAt = Date.now();
  /** Encodings of what was translated, by object, per-tunnel piece and key: kept while their owners live. */
  readonly encoder = new ResourceEncoder();
  /** Translated per-tunnel pieces, kept while their tunnel objects live. */
  private readonly pieces = new TunnelPieces();

  constructor(private readonly translate: Translate) {}

  /** True once a model has been set: before that no node gets anything (no partial start-up state). */
  get ready(): boolean {
    return this.models.originate !== undefined;
  }

  private readonly indexes: Partial<Record<Side, TunnelIndex>> = {};
  /** Views rebuilt by model changes so far (a view no change concerns is not rebuilt): for tests and benchmarks. */
  viewRebuilds = 0;
  /** Called when a model change starts being applied: lets tests and benchmarks time convergence. */
  onRebuild?: () => void;

  /**
   * Takes a new model. Only views a changed tunnel concerns are rebuilt, and in them only the changed
   * tunnels are translated and encoded anew; only watchers of a view whose content changed are told.
   */
  /** `changedAt`: when the source change behind this model happened (epoch ms), for convergence times. */
  setModel(model: Model, changedAt = Date.now()): void {
    this.setModels({ terminate: model, originate: model }, changedAt);
  }

  /** A model per side; a side whose model is the one it already has is not looked at. */
  setModels(models: Record<Side, Model>, changedAt = Date.now()): void {
    this.onRebuild?.();
    this.changedAt = changedAt;
    const diffs: Partial<Record<Side, ReturnType<typeof changedTunnels>>> = {};
    const previousModels = { ...this.models };
    for (const side of sides) {
      if (models[side] === this.models[side]) continue;
      const other = diffs[side === 'terminate' ? 'originate' : 'terminate'];
      // Both sides usually hold the same model: the changes are worked out once.
      const shared =
        other && models.terminate === models.originate && this.indexes.terminate === this.indexes.originate;
      diffs[side] = shared ? other : changedTunnels(this.indexes[side], models[side].tunnels);
    }
    for (const side of sides) {
      if (!diffs[side]) continue;
      this.indexes[side] = diffs[side].index;
      this.models[side] = models[side];
    }
    const changed: ViewEntry[] = [];
    for (const entry of this.views.values()) {
      const diff = diffs[sideOf(entry.view)];
      // A side whose model is unchanged keeps its snapshots (every watched view has one once a model is set).
      if (!diff) continue;
      const concerned = (t: Tunnel | undefined) => t !== undefined && concerns(entry.view, t);
      const touched =
        diff.portsChanged ||
        !entry.snapshot ||
        secretsChanged(previousModels[sideOf(entry.view)], this.models[sideOf(entry.view)]!, entry.view) ||
        diff.changes.some((c) => concerned(c.before) || concerned(c.after));
      if (!touched) continue;
      const before = entry.snapshot;
      this.rebuild(entry);
      this.viewRebuilds++;
      if (
        !before ||
        Object.keys(before).some((k) => before[k as keyof Snapshot] !== entry.snapshot![k as keyof Snapshot])
      )
        changed.push(entry);
    }
    for (const entry of changed) for (const notify of entry.listeners) this.toNotify.add(notify);
    this.fanOut();
  }

  /** The model a view's resources are translated from. */
  private modelFor(view: NodeView): Model | undefined {
    return this.models[sideOf(view)];
  }

  /** Watchers still to be told about the latest change (each once, however many changes came). */
  private readonly toNotify = new Set<() => void>();
  private fanOutScheduled = false;

  /**
   * Tells watchers in slices, yielding to the event loop between them, so the first streams' writes
   * reach the network while later streams are still being prepared: with 1,000 streams the last one
   * is served in about the time of the work alone instead of work plus flush. A watcher reads the
   * latest snapshot when told, so a change arriving meanwhile is simply included.
   */
  private fanOut(): void {
    if (this.fanOutScheduled) return;
    let n = 0;
    for (const notify of this.toNotify) {
      this.toNotify.delete(notify);
      notify();
      if (++n === fanOutSlice) break;
    }
    if (this.toNotify.size === 0) return;
    this.fanOutScheduled = true;
    setImmediate(() => {
      this.fanOutScheduled = false;
      this.fanOut();
    });
  }

  /** Resources and diagnostics for a view without any stream (render, debug). */
  peek(view: NodeView): { snapshot?: Snapshot; diagnostics: Diagnostic[] } {
    const entry = this.views.get(viewKey(view));
    if (entry) return entry;
    const model = this.modelFor(view);
    if (!model) return { diagnostics: [] };
    return this.encoder.build(this.translate(model, view, this.pieces));
  }

  /** A view's resources as Envoy JSON, by kind and name (translated again: snapshots keep only bytes). */
  objects(view: NodeView): Record<ResourceKind, Map<string, ResourceObject>> | undefined {
    const model = this.modelFor(view);
    if (!model) return undefined;
    const { resources } = this.translate(model, view, this.pieces);
    const out = {} as Record<ResourceKind, Map<string, ResourceObject>>;
    for (const kind of pushOrder) {
      out[kind] = new Map();
      for (const r of resources[kind]) if (!out[kind].has(r.name)) out[kind].set(r.name, objectOf(r));
    }
    for (const [name, secret] of out.secret) out.secret.set(name, redactSecret(secret));
    return out;
  }

  watch(view: NodeView, onChange: () => void): Watch {
    const key = viewKey(view);
    let entry = this.views.get(key);
    if (!entry) {
      entry = { view, diagnostics: [], listeners: new Set() };
      this.views.set(key, entry);
      if (this.modelFor(view)) this.rebuild(entry);
    }
    entry.listeners.add(onChange);
    const owned = entry;
    return {
      view,
      snapshot: () => owned.snapshot,
      cancel: () => {
        owned.listeners.delete(onChange);
        this.toNotify.delete(onChange);
        // Views nobody watches are dropped so memory follows connected nodes, not history.
        if (owned.listeners.size === 0) this.views.delete(key);
      },
    };
  }

  /** Problems found translating or validating for any watched view, each once. */
  diagnostics(): Diagnostic[] {
    const seen = new Map<string, Diagnostic>();
    for (const entry of this.views.values())
      for (const d of entry.diagnostics) seen.set(`${d.reason}|${d.object.name}|${d.message}`, d);
    return [...seen.values()];
  }

  /** Distinct resources currently served to some node, by type. */
  resourceCounts(): Record<ResourceKind, number> {
    const counts = {} as Record<ResourceKind, number>;
    for (const kind of pushOrder) {
      const names = new Set<string>();
      for (const entry of this.views.values()) {
        for (const name of entry.snapshot?.[kind].resources.keys() ?? []) names.add(name);
      }
      counts[kind] = names.size;
    }
    return counts;
  }

  viewCount(): number {
    return this.views.size;
  }

  private rebuild(entry: ViewEntry): void {
    const translation = this.translate(this.modelFor(entry.view)!, entry.view, this.pieces);
    const built = this.encoder.build(translation, entry.snapshot);
    for (const [kind, type] of Object.entries(built.snapshot) as [ResourceKind, TypeSnapshot][]) {
      const previous = entry.snapshot?.[kind];
      // A type whose content did not change keeps the time of the change that last changed it.
      type.changedAt = previous && previous.version === type.version ? previous.changedAt : this.changedAt;
    }
    entry.snapshot = built.snapshot;
    entry.diagnostics = built.diagnostics;
  }
}
