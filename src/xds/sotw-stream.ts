// One state-of-the-world ADS stream: subscriptions, nonces, what was sent and acknowledged per type.
// It sends only what changed for this node, in make-before-break order, and never queues more than
// one pending state when the client reads slowly.
import { encodeDiscoveryResponse, type EncodedResource } from '../envoy/encode.js';
import { isWildcardKind, kindOfTypeUrl, TypeUrl, type ResourceKind } from '../envoy/protos.js';
import type { ServedSnapshot, ServedType, Watch } from '../cache/watch.js';
import { decide, type Decision } from './decide.js';
import { SentLedger, type Delivery } from './ledger.js';
import { checkNameBytes, type DecodedRequest, type Subscription, type SubscriptionTable } from './request.js';
import type { NodeIdentity } from './node.js';
import { sotwHoldsView } from './synced.js';
import { childKinds, withAlso, BaseStream, type NackRetryState, type ResponseSink } from './base-stream.js';

export interface NackRecord {
  nonce: string;
  /** version_info of the rejected response. */
  version: string;
  message: string;
  at: string;
}

export interface TypeState extends NackRetryState {
  requested: boolean;
  wildcard: boolean;
  /** Subscribed names (without `*`); shared with other streams that sent the same list: read only. */
  names: ReadonlySet<string>;
  /** What was sent per name, and which response carried it (CSDS reports per resource). */
  ledger: SentLedger;
  lastNonce?: string;
  lastVersion?: string;
  ackedVersion?: string;
  ackedNonce?: string;
  /** When the last ACK came (epoch ms; status shows since when a type is SYNCED). */
  ackedAt?: number;
  lastNack?: NackRecord;
  /** The last response's delivery record (a NACK marks it). */
  lastDelivery?: Delivery;
  /** Sequence number of the last response sent and of the last one ACKed for this type (0: none). */
  lastSeq: number;
  ackedSeq: number;
  /**
   * When the source change behind the last response happened (epoch ms), if that response was pushed
   * because of a change (not asked for by a new subscription); cleared once it is ACKed or NACKed.
   */
  changedAt?: number;
  /** Generation of the type snapshot this stream last reconciled with (-1: look at everything). */
  generation: number;
  /**
   * The last request's subscription, shared with live streams that sent the same names and held until
   * replaced or the stream ends; its raw bytes recognise an unchanged subscription without decoding it.
   */
  subscription?: Subscription;
  /** Whether `names` covered `resources` when last asked (synced.ts). */
  coverage?: { names: ReadonlySet<string>; resources: ReadonlyMap<string, unknown>; covered: boolean };
}

export type { Delivery };

export interface StreamEvents {
  sent(stream: SotwStream, kind: ResourceKind, version: string, nonce: string, count: number): void;
  decided(stream: SotwStream, kind: ResourceKind, decision: Decision, version: string, nonce: string): void;
}

export type { ResponseSink };

export type { DecodedRequest };

export class SotwStream extends BaseStream {
  readonly mode = 'sotw' as const;
  readonly types = new Map<ResourceKind, TypeState>();

  constructor(
    node: NodeIdentity,
    watch: Watch,
    sink: ResponseSink,
    private readonly events: StreamEvents,
    controlPlaneId: string,
    private readonly subscriptions: SubscriptionTable,
  ) {
    super(node, watch, sink, controlPlaneId);
  }

  /** Handles one request; returns the decision, or undefined for a type this server does not serve. */
  onRequest(request: DecodedRequest): Decision | undefined {
    const kind = kindOfTypeUrl.get(request.type_url ?? '');
    if (!kind) return undefined;
    const state = this.stateOf(kind);
    const decision = decide(
      {
        versionInfo: request.version_info ?? '',
        responseNonce: request.response_nonce ?? '',
        errorMessage: request.error_detail
          ? (request.error_detail.message ?? `code ${request.error_detail.code ?? 0}`)
          : undefined,
      },
      state,
    );
    this.events.decided(this, kind, decision, request.version_info ?? '', request.response_nonce ?? '');
    if (decision.kind === 'stale') return decision;
    state.changedAt = undefined;
    if (decision.kind === 'ack') {
      state.ackedVersion = request.version_info ?? '';
      state.ackedNonce = request.response_nonce;
      state.ackedSeq = state.lastSeq;
      state.ackedAt = Date.now();
      state.ledger.compact(state.lastDelivery);
      state.nacks = 0;
      this.cancelRetry(kind, state);
    } else if (decision.kind === 'nack') {
      state.lastNack = {
        nonce: request.response_nonce ?? '',
        version: state.lastVersion ?? '',
        message: decision.message,
        at: new Date().toISOString(),
      };
      if (state.lastDelivery) state.lastDelivery.nack = state.lastNack;
      this.scheduleRetry(kind, state);
    }
    this.subscribe(
      kind,
      state,
      request.namesRaw ?? new Uint8Array(0),
      decision.kind === 'subscribe' ? (request.version_info ?? '') : undefined,
    );
    this.pushKind(kind, decision.kind === 'subscribe', false);
    return decision;
  }

  protected pushChanges(kind: ResourceKind): void {
    this.pushKind(kind, false, true);
  }

  protected resend(kind: ResourceKind): void {
    const state = this.types.get(kind);
    if (!state) return;
    state.ledger.forgetAll();
    state.generation = -1;
    this.pushKind(kind, true, false);
  }

  override close(): void {
    super.close();
    for (const state of this.types.values()) {
      if (state.subscription) this.subscriptions.release(state.subscription);
      state.subscription = undefined;
    }
  }

  /** The node's current snapshot (what it would be sent now). */
  snapshot(): ServedSnapshot | undefined {
    return this.watch.snapshot();
  }

  holdsView(): boolean {
    return sotwHoldsView(this.types, this.watch.snapshot());
  }

  private stateOf(kind: ResourceKind): TypeState {
    let state = this.types.get(kind);
    if (!state) {
      state = newTypeState();
      this.types.set(kind, state);
    }
    return state;
  }

  /**
   * Takes the request's subscription. Names it adds are forgotten in the ledger, so the next look checks
   * them (and only them, besides what changed): a new cluster's endpoints cost each stream one name.
   */
  private subscribe(kind: ResourceKind, state: TypeState, namesRaw: Uint8Array, clientVersion: string | undefined) {
    // Every SotW ACK repeats the whole subscription: the same bytes as last time mean no change.
    const previous = state.subscription;
    const held = previous?.raw;
    if (state.requested && held && (held === namesRaw || Buffer.compare(held, namesRaw) === 0)) {
      this.reconnected(kind, state, clientVersion);
      return;
    }
    let bytes = namesRaw.length;
    for (const [k, t] of this.types) if (k !== kind) bytes += t.subscription?.raw.length ?? 0;
    checkNameBytes(bytes);
    const sub: Subscription = this.subscriptions.of(namesRaw);
    const wildcard = isWildcardKind(kind) && sub.wildcardish;
    if (wildcard !== state.wildcard) state.ledger.forgetAll();
    else if (!wildcard && previous && state.requested) {
      // Names the client adds must be sent even if an earlier subscription had them.
      for (const name of this.subscriptions.added(previous, sub)) state.ledger.forget(name);
    }
    if (previous) this.subscriptions.release(previous);
    state.subscription = sub;
    state.requested = true;
    state.wildcard = wildcard;
    state.names = sub.set;
    this.reconnected(kind, state, clientVersion);
  }

  /**
   * A reconnecting client that already has exactly our content is not sent it again. Every response
   * carries the view's version of the type, so an equal version means equal content.
   */
  private reconnected(kind: ResourceKind, state: TypeState, clientVersion: string | undefined): void {
    const snapshot = this.watch.snapshot();
    if (clientVersion && snapshot && snapshot[kind].version === clientVersion) {
      // The client holds this content from an earlier stream: it counts as sent and ACKed (seq 0).
      const ts = snapshot[kind];
      state.ledger.settle(ts.resources, [], { seq: 0, responseVersion: clientVersion, at: new Date() }, true);
      state.generation = ts.generation;
      state.lastVersion = clientVersion;
      state.ackedVersion = clientVersion;
    }
  }

  /**
   * Sends what changed for one type. `full` (after a subscription change) looks at every subscribed
   * name; otherwise only at the names the view's snapshot reports as changed since this stream last
   * looked, so a change costs each stream in proportion to the change.
   */
  private pushKind(kind: ResourceKind, full: boolean, becauseOfChange: boolean): void {
    const state = this.types.get(kind);
    const snapshot = this.watch.snapshot();
    if (!state?.requested || !snapshot) return;
    if (!this.mayWrite()) {
      // Sent on drain; a subscription change then needs a full look.
      this.dirty = true;
      if (full) state.generation = -1;
      return;
    }
    const ts = snapshot[kind];
    if (!full && state.generation === ts.generation && !state.ledger.unsettled) return;
    // What changed since the last look, and names out of line (added or forgotten): not every name.
    const since = full ? undefined : ts.changedSince(state.generation);
    const recheck = state.ledger.outOfLine();
    const candidates = since && recheck ? withAlso(since, recheck) : undefined;
    state.generation = ts.generation;
    const subscribed = (name: string) => state.wildcard || state.names.has(name);
    const look: Iterable<string> = candidates ?? (state.wildcard ? ts.resources.keys() : state.names);
    const changed: EncodedResource[] = [];
    let present = 0;
    for (const name of look) {
      const r = ts.resources.get(name);
      if (!r || (candidates && !subscribed(name))) continue;
      present++;
      if (state.ledger.sent(name)?.version !== r.version) changed.push(r);
    }
    let toSend: EncodedResource[];
    let whole = !candidates && changed.length === present;
    if (isWildcardKind(kind)) {
      // LDS and CDS responses carry the full state; send one whenever the state differs.
      const differs = ts.version !== state.lastVersion || changed.length > 0;
      toSend = !differs ? [] : state.wildcard ? [...ts.resources.values()] : selected(ts, state.names);
      whole = true;
    } else toSend = changed;
    if (toSend.length === 0 && !(isWildcardKind(kind) && ts.version !== state.lastVersion)) {
      state.ledger.settle(ts.resources, [], undefined, false);
      return;
    }
    const version = ts.version;
    const nonce = this.respond(ts, responseKey(state, toSend, whole), state.lastNonce, (n) =>
      encodeDiscoveryResponse({
        versionInfo: version,
        typeUrl: TypeUrl[kind],
        nonce: n,
        controlPlaneId: this.controlPlaneId,
        resources: toSend.map((r) => r.any),
      }),
    );
    this.cancelRetry(kind, state);
    const delivery: Delivery = { seq: ++state.lastSeq, responseVersion: version, at: new Date() };
    state.ledger.settle(ts.resources, toSend, delivery, whole);
    state.lastDelivery = delivery;
    state.lastNonce = nonce;
    state.lastVersion = version;
    state.changedAt = becauseOfChange ? ts.changedAt : undefined;
    // A changed cluster or listener may need its endpoints, routes or filter configs again while it warms.
    for (const child of childKinds[kind] ?? []) {
      const childState = this.types.get(child);
      if (!childState || changed.length === 0) continue;
      if (kind === 'cluster') for (const r of changed) childState.ledger.forget(r.name);
      else {
        // Which routes or filter configs a listener names is not known here: look at all of them.
        childState.ledger.forgetAll();
        childState.generation = -1;
      }
    }
    this.events.sent(this, kind, version, nonce, toSend.length);
  }
}

function selected(ts: ServedType, names: ReadonlySet<string>): EncodedResource[] {
  const out: EncodedResource[] = [];
  for (const name of names) {
    const r = ts.resources.get(name);
    if (r) out.push(r);
  }
  return out;
}

/**
 * Every field in one literal, optional ones too: all type states share one hidden class, so the loops
 * over 1,000 streams that read them (push, holdsView) stay monomorphic.
 */
function newTypeState(): TypeState {
  return {
    requested: false,
    wildcard: false,
    names: new Set<string>(),
    ledger: new SentLedger(),
    lastNonce: undefined,
    lastVersion: undefined,
    ackedVersion: undefined,
    ackedNonce: undefined,
    ackedAt: undefined,
    lastNack: undefined,
    lastDelivery: undefined,
    lastSeq: 0,
    ackedSeq: 0,
    changedAt: undefined,
    generation: -1,
    subscription: undefined,
    coverage: undefined,
    nacks: 0,
    retryAt: undefined,
  };
}

function responseKey(state: TypeState, toSend: readonly EncodedResource[], whole: boolean): string | undefined {
  if (state.wildcard) return '*';
  if (whole) {
    // Everything this (shared) subscription names, in its order.
    return `all:${state.subscription!.id}`;
  }
  if (toSend.length <= 32) return toSend.map((r) => r.name).join('\n');
  return undefined;
}
