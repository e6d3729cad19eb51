// The snapshot cache: one snapshot per distinct node view, rebuilt when the model changes, shared by
// every stream with that view. The server meets it only through `watch`.
import type { Model } from '../model/tunnel.js';
import type { Diagnostic } from '../model/diagnostics.js';
import { viewKey, type NodeView } from '../translate/view.js';
import { ResourceEncoder, type Snapshot } from './snapshot.js';

export interface Watch {
  readonly view: NodeView;
  snapshot(): Snapshot | undefined;
  cancel(): void;
}

interface ViewEntry {
  view: NodeView;
  snapshot?: Snapshot;
  diagnostics: Diagnostic[];
  listeners: Set<() => void>;
}

export class SnapshotCache {
  private readonly views = new Map<string, ViewEntry>();
  private model?: Model;
  readonly encoder = new ResourceEncoder();

  /** True once a model has been set: before that no node gets anything (no partial start-up state). */
  get ready(): boolean {
    return this.model !== undefined;
  }

  setModel(model: Model): void {
    this.model = model;
    for (const entry of this.views.values()) this.rebuild(entry);
    this.encoder.sweep();
    for (const entry of this.views.values()) for (const notify of entry.listeners) notify();
  }

  /** Resources and diagnostics for a view without any stream (render, debug). */
  peek(view: NodeView): { snapshot?: Snapshot; diagnostics: Diagnostic[] } {
    const entry = this.views.get(viewKey(view));
    if (entry) return entry;
    if (!this.model) return { diagnostics: [] };
    return this.encoder.build(this.model, view);
  }

  watch(view: NodeView, onChange: () => void): Watch {
    const key = viewKey(view);
    let entry = this.views.get(key);
    if (!entry) {
      entry = { view, diagnostics: [], listeners: new Set() };
      this.views.set(key, entry);
      if (this.model) this.rebuild(entry);
    }
    entry.listeners.add(onChange);
    const owned = entry;
    return {
      view,
      snapshot: () => owned.snapshot,
      cancel: () => {
        owned.listeners.delete(onChange);
        // Views nobody watches are dropped so memory follows connected nodes, not history.
        if (owned.listeners.size === 0) this.views.delete(key);
      },
    };
  }

  /** Problems found translating or validating for any watched view, each once. */
  diagnostics(): Diagnostic[] {
    const seen = new Map<string, Diagnostic>();
    for (const entry of this.views.values()) for (const d of entry.diagnostics) seen.set(`${d.reason}|${d.object.name}|${d.message}`, d);
    return [...seen.values()];
  }

  viewCount(): number {
    return this.views.size;
  }

  private rebuild(entry: ViewEntry): void {
    const built = this.encoder.build(this.model!, entry.view);
    entry.snapshot = built.snapshot;
    entry.diagnostics = built.diagnostics;
  }
}
