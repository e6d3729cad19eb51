// What one stream sent of one type, kept small. A stream that follows its view's snapshots holds, for
// every name it subscribes to, exactly what the last snapshot it was brought in line with holds; so
// the ledger stores a reference to that snapshot's resource map (shared by every stream of the view)
// and only the names that differ from it. Per-name maps on 1,000 streams x 3,000 resources cost
// hundreds of megabytes; this costs a few pointers per stream when nothing is out of line.
import type { EncodedResource } from '../envoy/encode.js';
import type { NackRecord } from './sotw-stream.js';

/** The response that last carried a resource on a stream; one object per response, shared by its resources. */
export interface Delivery {
  /** Position of that response on this stream; compare with TypeState.ackedSeq. */
  seq: number;
  /** version_info of that response. */
  responseVersion: string;
  at: Date;
  /** Set when the client NACKed that response: it does not hold this version. */
  nack?: NackRecord;
}

const maxDeliveries = 256;

export class SentLedger {
  /** For every subscribed name not in `overrides`, what the client was sent is `base.get(name)`. */
  private base?: ReadonlyMap<string, EncodedResource>;
  /** Names whose sent state differs from `base` (undefined: not sent); made when first needed. */
  private overrides?: Map<string, EncodedResource | undefined>;
  /** The response that last carried everything, and the names carried by later responses. */
  private baseDelivery?: Delivery;
  private deliveries?: Map<string, Delivery>;

  /** What the client was sent for `name` (meaningful for subscribed names only). */
  sent(name: string): EncodedResource | undefined {
    return this.overrides?.has(name) ? this.overrides.get(name) : this.base?.get(name);
  }

  delivery(name: string): Delivery | undefined {
    return this.sent(name) ? (this.deliveries?.get(name) ?? this.baseDelivery) : undefined;
  }

  /** The client must be sent `name` again (re-subscribed, or its parent changed). */
  forget(name: string): void {
    if (this.base) (this.overrides ??= new Map()).set(name, undefined);
    this.deliveries?.delete(name);
  }

  forgetAll(): void {
    this.base = undefined;
    this.overrides = undefined;
    this.baseDelivery = undefined;
    this.deliveries = undefined;
  }

  /**
   * Per-name delivery records grow with every change a stream receives (up to one per name). Once the
   * client has ACKed everything, more than `maxDeliveries` of them are folded into one: each resource
   * then reads as carried by `latest`, the response it ACKed last. Exact for the recent changes that
   * matter while a rollout is in flight; bounded for a stream that lives through thousands of changes.
   */
  compact(latest: Delivery | undefined): void {
    if (!latest || (this.deliveries?.size ?? 0) <= maxDeliveries) return;
    this.baseDelivery = latest;
    this.deliveries = undefined;
  }

  /** True when some name is out of line with `base`: the next look must check those names too. */
  get unsettled(): boolean {
    return (this.overrides?.size ?? 0) > 0;
  }

  /**
   * The names a look must check besides those changed since the last settle: the ones out of line
   * with `base`. Undefined when there is no base (nothing settled yet, or all forgotten): then every name.
   */
  outOfLine(): Iterable<string> | undefined {
    if (!this.base) return undefined;
    return this.overrides?.keys() ?? [];
  }

  /**
   * The client now holds `resources`' version of every subscribed name. `carried` went out in
   * `delivery`; `whole` says that response carried every subscribed name.
   */
  settle(
    resources: ReadonlyMap<string, EncodedResource>,
    carried: readonly EncodedResource[],
    delivery: Delivery | undefined,
    whole: boolean,
  ): void {
    this.base = resources;
    this.overrides = undefined;
    if (!delivery) return;
    if (whole) {
      this.baseDelivery = delivery;
      this.deliveries = undefined;
    } else for (const r of carried) (this.deliveries ??= new Map()).set(r.name, delivery);
  }
}
