// What the ADS server may read from the cache, and nothing more (as go-control-plane's ConfigWatcher):
// a watch per node view, and per type an immutable set of encoded resources that says what changed
// since an earlier generation. The server never sees models, translations or how the cache keeps them.
import type { EncodedResource } from '../envoy/encode.js';
import type { NodeView } from '../envoy/node-view.js';
import type { ResourceKind } from '../envoy/protos.js';

/** One type of one view's resources. Never modified: a change makes a new one. */
export interface ServedType {
  /** version_info: equal versions mean equal content. */
  readonly version: string;
  /** Increases whenever the content changes; what a stream last looked at, for `changedSince`. */
  readonly generation: number;
  /** When the source change behind this content happened (epoch ms): push and convergence times. */
  readonly changedAt?: number;
  readonly resources: ReadonlyMap<string, EncodedResource>;
  /**
   * Names added, changed or removed since `generation` (none for its own generation), or undefined when
   * that is too long ago to say.
   */
  changedSince(generation: number): ReadonlySet<string> | undefined;
  /** name -> version of every resource, made once for every stream of the view. */
  versions(): ReadonlyMap<string, string>;
  /** Whether `names` (a set that is never modified) holds every resource name; answered once per set. */
  coveredBy(names: ReadonlySet<string>): boolean;
  /**
   * A value built once for this content and `key`, shared by every stream of the view (the responses
   * 1,000 Envoys of one view are sent). `id` is unique in this cache. A few dozen keys are kept.
   */
  shared<T>(key: string, build: (id: string) => T): T;
}

export type ServedSnapshot = Readonly<Record<ResourceKind, ServedType>>;

export interface Watch {
  readonly view: NodeView;
  /** What the view holds now; undefined until the first model. */
  snapshot(): ServedSnapshot | undefined;
  cancel(): void;
}

/** The server's one way in: `onChange` is called when the view's content changed (coalesced). */
export interface ConfigWatcher {
  watch(view: NodeView, onChange: () => void): Watch;
}
