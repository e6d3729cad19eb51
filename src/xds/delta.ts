// One delta (incremental) ADS stream: per type a subscription (wildcard and/or names), what the client
// holds, nonces and ACK state. Responses carry only what changed plus removed_resources, built from
// `Resource` bytes encoded once per content version (envoy/encode.ts deltaResourceBytes). Like the
// state-of-the-world stream, it never queues more than one pending state when the client reads slowly.
import { deltaResourceBytes, encodeDeltaDiscoveryResponse } from '../envoy/encode.js';
import { isWildcardKind, kindOfTypeUrl, TypeUrl, type ResourceKind } from '../envoy/protos.js';
import type { ServedSnapshot, Watch } from '../cache/watch.js';
import {
  applySubscription,
  decideDelta,
  deltaChanges,
  newSubscription,
  settleKnown,
  type DeltaDecision,
  type DeltaSubscription,
} from './delta-decide.js';
import { DeltaDeliveries } from './delta-status.js';
import type { NodeIdentity } from './node.js';
import { deltaHoldsView } from './synced.js';
import { checkNameBytes, checkNamesPerRequest } from './request.js';
import type { NackRecord } from './sotw-stream.js';
import { childKinds, withAlso, BaseStream, type NackRetryState, type ResponseSink } from './base-stream.js';
import { clearIfAny } from '../clear.js';

export interface DeltaTypeState extends DeltaSubscription, NackRetryState {
  lastVersion?: string;
  ackedVersion?: string;
  ackedNonce?: string;
  lastNack?: NackRecord;
  /** Generation of the type snapshot last reconciled with (-1: look at everything). */
  generation: number;
  /** The first request of the type gets an answer even when there is nothing to add: Envoy waits for it. */
  owesAnswer: boolean;
  /** Which response carried each name and how it was answered (status, CSDS, metrics). */
  deliveries: DeltaDeliveries;
  /** Whether `names` covered the type snapshot of `generation` when last asked (synced.ts). */
  coverage?: DeltaCoverage;
}

export interface DeltaCoverage {
  namesVersion: number;
  namesDropped: number;
  generation: number;
  /** The resources the names lacked (empty: covered; undefined: too many to list). */
  missing: readonly string[] | undefined;
}

export interface DecodedDeltaRequest {
  type_url?: string;
  resource_names_subscribe?: string[];
  resource_names_unsubscribe?: string[];
  initial_resource_versions?: Record<string, string>;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string } | null;
}

export interface DeltaStreamEvents {
  sent(stream: DeltaStream, kind: ResourceKind, version: string, nonce: string, count: number, removed: number): void;
  decided(stream: DeltaStream, kind: ResourceKind, decision: DeltaDecision, nonce: string): void;
}

export class DeltaStream extends BaseStream {
  readonly mode = 'delta' as const;
  readonly types = new Map<ResourceKind, DeltaTypeState>();

  constructor(
    node: NodeIdentity,
    watch: Watch,
    sink: ResponseSink,
    private readonly events: DeltaStreamEvents,
    controlPlaneId: string,
  ) {
    super(node, watch, sink, controlPlaneId);
  }

  onRequest(request: DecodedDeltaRequest): DeltaDecision | undefined {
    const kind = kindOfTypeUrl.get(request.type_url ?? '');
    if (!kind) return undefined;
    let state = this.types.get(kind);
    if (!state) {
      state = newDeltaTypeState();
      this.types.set(kind, state);
    }
    const req = {
      responseNonce: request.response_nonce ?? '',
      errorMessage: request.error_detail
        ? (request.error_detail.message ?? `code ${request.error_detail.code ?? 0}`)
        : undefined,
      subscribe: request.resource_names_subscribe ?? [],
      unsubscribe: request.resource_names_unsubscribe ?? [],
      initialVersions: request.initial_resource_versions ?? {},
    };
    const initialNames = Object.keys(req.initialVersions);
    checkNamesPerRequest(req.subscribe.length + req.unsubscribe.length + initialNames.length, 'DeltaDiscoveryRequest');
    const decision = decideDelta(req, state);
    this.events.decided(this, kind, decision, req.responseNonce);
    if (decision.kind === 'ack') {
      state.ackedVersion = state.lastVersion;
      state.ackedNonce = req.responseNonce;
      state.nacks = 0;
      state.deliveries.acked();
      this.cancelRetry(kind, state);
    } else if (decision.kind === 'nack') {
      state.lastNack = {
        nonce: req.responseNonce,
        version: state.lastVersion ?? '',
        message: decision.message,
        at: new Date().toISOString(),
      };
      state.deliveries.nacked(state.lastNack);
      this.scheduleRetry(kind, state);
    }
    // Subscription changes apply whatever the nonce: Envoy piggybacks them on ACKs.
    if (applySubscription(state, req, isWildcardKind(kind))) state.generation = -1;
    if (req.subscribe.length > 0 || initialNames.length > 0) {
      if (decision.kind === 'subscribe') this.initialNameBytes += initialNames.reduce((n, name) => n + name.length, 0);
      checkNameBytes(this.nameBytes());
    }
    this.pushKind(kind);
    return decision;
  }

  protected pushChanges(kind: ResourceKind): void {
    this.pushKind(kind, true);
  }

  /** The node's current snapshot (what it would be sent now). */
  snapshot(): ServedSnapshot | undefined {
    return this.watch.snapshot();
  }

  protected resend(kind: ResourceKind): void {
    const state = this.types.get(kind);
    if (!state) return;
    // Forget what the client was sent (not names it was told are missing): all of it goes again.
    for (const name of [...state.known.keys()]) if (state.known.get(name) !== null) state.known.delete(name);
    state.generation = -1;
    this.pushKind(kind);
  }

  holdsView(): boolean {
    return deltaHoldsView(this.types, this.watch.snapshot());
  }

  /** Names reported in initial_resource_versions (kept as what the client holds). */
  private initialNameBytes = 0;

  /** Bytes of names this stream's subscriptions hold (checked against requestLimits). */
  private nameBytes(): number {
    let bytes = this.initialNameBytes;
    for (const state of this.types.values()) bytes += state.nameBytes;
    return bytes;
  }

  /**
   * Sends what changed for one type: looks at the names changed since the last look and the names in
   * `recheck`, or at every name after `generation` was reset (-1).
   */
  private pushKind(kind: ResourceKind, becauseOfChange = false): void {
    const state = this.types.get(kind);
    const snapshot = this.watch.snapshot();
    if (!state?.started || !snapshot) return;
    if (!this.mayWrite()) {
      // Sent on drain; a subscription change then needs a full look.
      this.dirty = true;
      return;
    }
    const ts = snapshot[kind];
    if (!state.owesAnswer && state.generation === ts.generation && state.recheck.size === 0) return;
    const since = ts.changedSince(state.generation);
    const incremental = since && withAlso(since, state.recheck);
    clearIfAny(state.recheck);
    state.generation = ts.generation;
    const versions = ts.versions();
    const { send, removed } = deltaChanges(state, versions, incremental);
    settleKnown(state, versions, incremental);
    if (send.length === 0 && removed.length === 0 && !state.owesAnswer) {
      // Nothing for the client, which therefore already has this version (reconnect with all known).
      if (state.lastVersion === undefined) state.lastVersion = state.ackedVersion = ts.version;
      return;
    }
    state.owesAnswer = false;
    this.cancelRetry(kind, state);
    // Shareable: everything (a first sync), or a small change; both are the same for every stream of the view.
    const key =
      removed.length === 0 && send.length === ts.resources.size
        ? 'all'
        : send.length + removed.length <= 32
          ? `${send.join('\n')}|${removed.join('\n')}`
          : undefined;
    const nonce = this.respond(ts, key, state.lastNonce, (n) =>
      encodeDeltaDiscoveryResponse({
        systemVersionInfo: ts.version,
        typeUrl: TypeUrl[kind],
        nonce: n,
        controlPlaneId: this.controlPlaneId,
        // Only when this response is not shared already (a first sync: 1,000 streams, 1,000 names each).
        resources: send.map((name) => deltaResourceBytes(ts.resources.get(name)!)),
        removed,
      }),
    );
    state.lastNonce = nonce;
    state.lastVersion = ts.version;
    state.deliveries.sent(
      send,
      send.length === ts.resources.size,
      ts.version,
      becauseOfChange ? ts.changedAt : undefined,
    );
    this.resendChildren(kind, send);
    this.events.sent(this, kind, ts.version, nonce, send.length, removed.length);
  }

  /** A changed cluster or listener may need its endpoints, routes or filter configs again while it warms. */
  private resendChildren(kind: ResourceKind, changed: readonly string[]): void {
    for (const child of childKinds[kind] ?? []) {
      const childState = this.types.get(child);
      if (!childState || changed.length === 0) continue;
      if (kind === 'cluster') {
        for (const name of changed) {
          childState.known.delete(name);
          childState.recheck.add(name);
        }
        continue;
      }
      // Which routes or filter configs a listener names is not known here: all of them go again.
      for (const name of [...childState.known.keys()]) {
        if (childState.known.get(name) !== null) childState.known.delete(name);
      }
      childState.generation = -1;
    }
  }
}

/** Every field in one literal, optional ones too: one hidden class for every stream's type state. */
function newDeltaTypeState(): DeltaTypeState {
  const sub = newSubscription();
  return {
    started: sub.started,
    wildcard: sub.wildcard,
    names: sub.names,
    known: sub.known,
    recheck: sub.recheck,
    namesVersion: sub.namesVersion,
    namesDropped: sub.namesDropped,
    droppedNames: sub.droppedNames,
    nameBytes: sub.nameBytes,
    lastNonce: undefined,
    lastVersion: undefined,
    ackedVersion: undefined,
    ackedNonce: undefined,
    lastNack: undefined,
    generation: -1,
    owesAnswer: true,
    deliveries: new DeltaDeliveries(),
    coverage: undefined,
    nacks: 0,
    retryAt: undefined,
  };
}
