// One state-of-the-world ADS stream: subscriptions, nonces, what was sent and acknowledged per type.
// It sends only what changed for this node, in make-before-break order, and never queues more than
// one pending state when the client reads slowly.
import { encodeDiscoveryResponse, type EncodedResource } from '../envoy/encode.js';
import { isWildcardKind, kindOfTypeUrl, TypeUrl, type ResourceKind } from '../envoy/protos.js';
import type { Watch } from './cache.js';
import { decide, isWildcard, type Decision } from './decide.js';
import type { NodeIdentity } from './node.js';
import type { Snapshot } from './snapshot.js';
import { StreamTransport, type ResponseSink } from './transport.js';

function sameList(a: readonly string[], b: readonly string[] | undefined): boolean {
  if (!b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

export interface NackRecord {
  nonce: string;
  /** version_info of the rejected response. */
  version: string;
  message: string;
  at: string;
}

export interface TypeState {
  requested: boolean;
  wildcard: boolean;
  names: Set<string>;
  /** Version of each resource as last sent on this stream. */
  sent: Map<string, string>;
  lastNonce?: string;
  lastVersion?: string;
  ackedVersion?: string;
  ackedNonce?: string;
  lastNack?: NackRecord;
  /** Per resource: which response carried its current version (CSDS reports per resource). */
  delivered: Map<string, Delivery>;
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
  /** resource_names of the last request that changed the subscription, as sent. */
  lastNames?: readonly string[];
}

/** The response that last carried one resource on a stream. */
export interface Delivery {
  /** Position of that response on this stream; compare with TypeState.ackedSeq. */
  seq: number;
  /** version_info of that response. */
  responseVersion: string;
  at: Date;
  /** Set when the client NACKed that response: it does not hold this version. */
  nack?: NackRecord;
}

export interface StreamEvents {
  sent(stream: AdsStream, kind: ResourceKind, version: string, nonce: string, count: number): void;
  decided(stream: AdsStream, kind: ResourceKind, decision: Decision, version: string, nonce: string): void;
}

export type { ResponseSink };

export interface DecodedRequest {
  version_info?: string;
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string } | null;
}

const childKind: Partial<Record<ResourceKind, ResourceKind>> = { cluster: 'endpoint', listener: 'route' };

export class AdsStream extends StreamTransport {
  readonly mode = 'sotw' as const;
  readonly types = new Map<ResourceKind, TypeState>();

  constructor(node: NodeIdentity, watch: Watch, sink: ResponseSink, private readonly events: StreamEvents, controlPlaneId: string) {
    super(node, watch, sink, controlPlaneId);
  }

  /** Handles one request; returns the decision, or undefined for a type this server does not serve. */
  onRequest(request: DecodedRequest): Decision | undefined {
    const kind = kindOfTypeUrl.get(request.type_url ?? '');
    if (!kind) return undefined;
    const state = this.stateOf(kind);
    const names = request.resource_names ?? [];
    const decision = decide(
      {
        versionInfo: request.version_info ?? '',
        responseNonce: request.response_nonce ?? '',
        resourceNames: names,
        errorMessage: request.error_detail ? request.error_detail.message ?? `code ${request.error_detail.code ?? 0}` : undefined,
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
    } else if (decision.kind === 'nack') {
      state.lastNack = { nonce: request.response_nonce ?? '', version: state.lastVersion ?? '', message: decision.message, at: new Date().toISOString() };
      for (const d of state.delivered.values()) if (d.seq === state.lastSeq) d.nack = state.lastNack;
    }
    const resubscribed = this.subscribe(kind, state, names, decision.kind === 'subscribe' ? request.version_info ?? '' : undefined);
    this.pushKind(kind, resubscribed || decision.kind === 'subscribe', false);
    return decision;
  }

  protected pushChanges(kind: ResourceKind): void {
    this.pushKind(kind, false, true);
  }

  /** The node's current snapshot (what it would be sent now). */
  snapshot(): Snapshot | undefined {
    return this.watch.snapshot();
  }

  private stateOf(kind: ResourceKind): TypeState {
    let state = this.types.get(kind);
    if (!state) {
      state = { requested: false, wildcard: false, names: new Set(), sent: new Map(), delivered: new Map(), lastSeq: 0, ackedSeq: 0, generation: -1 };
      this.types.set(kind, state);
    }
    return state;
  }

  private subscribe(kind: ResourceKind, state: TypeState, names: readonly string[], clientVersion: string | undefined): boolean {
    const wildcard = isWildcardKind(kind) && isWildcard(names);
    // Every SotW ACK repeats the whole subscription (1,000 EDS names per Envoy in the benchmark): the
    // common case, the same list in the same order, is recognised without building a set.
    if (state.requested && wildcard === state.wildcard && sameList(names, state.lastNames)) {
      this.reconnected(kind, state, clientVersion);
      return false;
    }
    state.lastNames = names;
    const next = new Set(names.filter((n) => n !== '*'));
    const same = state.requested && wildcard === state.wildcard && sameSet(next, state.names);
    state.requested = true;
    state.wildcard = wildcard;
    if (!same) {
      // Forget what was sent for names the client dropped, so re-subscribing sends them again.
      for (const name of state.sent.keys()) {
        if (!state.wildcard && !next.has(name)) {
          state.sent.delete(name);
          state.delivered.delete(name);
        }
      }
      state.names = next;
    }
    this.reconnected(kind, state, clientVersion);
    return !same;
  }

  /**
   * A reconnecting client that already has exactly our content is not sent it again. Every response
   * carries the view's version of the type, so an equal version means equal content.
   */
  private reconnected(kind: ResourceKind, state: TypeState, clientVersion: string | undefined): void {
    const snapshot = this.watch.snapshot();
    if (clientVersion && snapshot && snapshot[kind].version === clientVersion) {
      // The client holds this content from an earlier stream: it counts as sent and ACKed (seq 0).
      const at = new Date();
      for (const r of this.selected(kind, state, snapshot)) {
        state.sent.set(r.name, r.version);
        state.delivered.set(r.name, { seq: 0, responseVersion: clientVersion, at });
      }
      state.lastVersion = clientVersion;
      state.ackedVersion = clientVersion;
    }
  }

  private selected(kind: ResourceKind, state: TypeState, snapshot: Snapshot): EncodedResource[] {
    const resources = snapshot[kind].resources;
    if (state.wildcard) return [...resources.values()];
    const out = [];
    for (const name of state.names) {
      const r = resources.get(name);
      if (r) out.push(r);
    }
    return out;
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
    if (this.blocked) {
      // Sent on drain; a subscription change then needs a full look.
      this.dirty = true;
      if (full) state.generation = -1;
      return;
    }
    const ts = snapshot[kind];
    if (!full && state.generation === ts.generation) return;
    const candidates = !full && ts.changed && state.generation === ts.changed.since ? ts.changed.names : undefined;
    state.generation = ts.generation;
    const look = candidates ?? new Set([...(state.wildcard ? ts.resources.keys() : state.names), ...state.sent.keys()]);
    const changed: EncodedResource[] = [];
    for (const name of look) {
      const r = ts.resources.get(name);
      if (!r || !(state.wildcard || state.names.has(name))) {
        state.sent.delete(name);
        state.delivered.delete(name);
        continue;
      }
      if (state.sent.get(name) !== r.version) changed.push(r);
    }
    let toSend: EncodedResource[];
    if (isWildcardKind(kind)) {
      // LDS and CDS responses carry the full state; send one whenever the state differs.
      if (ts.version === state.lastVersion) return;
      toSend = this.selected(kind, state, snapshot);
    } else {
      if (changed.length === 0) return;
      toSend = changed;
    }
    const version = ts.version;
    const nonce = this.nextNonce();
    const response = encodeDiscoveryResponse({
      versionInfo: version,
      typeUrl: TypeUrl[kind],
      nonce,
      controlPlaneId: this.controlPlaneId,
      resources: toSend.map((r) => r.any),
    });
    const seq = ++state.lastSeq;
    const at = new Date();
    for (const r of toSend) {
      state.sent.set(r.name, r.version);
      state.delivered.set(r.name, { seq, responseVersion: version, at });
    }
    state.lastNonce = nonce;
    state.lastVersion = version;
    state.changedAt = becauseOfChange ? snapshot[kind].changedAt : undefined;
    // A changed cluster or listener may need its endpoints or routes again while it warms.
    const child = childKind[kind];
    const childState = child ? this.types.get(child) : undefined;
    if (childState && changed.length > 0) {
      if (kind === 'cluster') for (const r of changed) childState.sent.delete(r.name);
      else childState.sent.clear();
      childState.generation = -1;
    }
    this.events.sent(this, kind, version, nonce, toSend.length);
    this.send(response);
  }
}
