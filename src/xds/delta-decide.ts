// The incremental (delta) xDS protocol as pure functions, the way decide.ts does it for state of the
// world: what a request means, how it changes the subscription, and which resources a response must
// add or remove. No I/O, no clocks: table-tested in test/unit/delta-decide.test.ts.

import { clearIfAny } from '../clear.js';

export interface DeltaRequest {
  responseNonce: string;
  errorMessage?: string;
  subscribe: readonly string[];
  unsubscribe: readonly string[];
  /** Only meaningful on the first request of a type: what the client already has (reconnect). */
  initialVersions: Readonly<Record<string, string>>;
}

export interface DeltaSubscription {
  /** Set once the first request of the type was seen on this stream. */
  started: boolean;
  wildcard: boolean;
  /** Names subscribed explicitly (besides the wildcard). */
  names: Set<string>;
  /**
   * What the client holds, as far as this stream knows: name -> version it was sent (or reported in
   * initial_resource_versions), or null when it was told the name does not exist.
   */
  known: KnownMap;
  /** Names edited outside a look (subscribed, unsubscribed, their parent changed): the next look checks them. */
  recheck: Set<string>;
  /** Increases whenever `names` or `wildcard` change (synced.ts remembers what it answered for them). */
  namesVersion: number;
  /** Increases whenever a name or the wildcard is dropped: until it does, `names` only grows. */
  namesDropped: number;
  /** The last few names dropped, oldest first (emptied when the wildcard is): see synced.ts. */
  droppedNames: string[];
  /** Bytes of `names` (checked against the request limits without summing every name per request). */
  nameBytes: number;
  lastNonce?: string;
}

export type DeltaDecision =
  /** First request of the type on this stream: set up the subscription and always answer. */
  | { kind: 'subscribe' }
  /** A request without a nonce after the first: a subscription change only. */
  | { kind: 'update' }
  /** The client applied our latest response. */
  | { kind: 'ack' }
  /** The client rejected our latest response: record it, do not resend the same content. */
  | { kind: 'nack'; message: string }
  /** Answers an older response; its subscription changes still apply. */
  | { kind: 'stale' };

/** The part of a Map that `known` needs; a plain Map works (tests), KnownVersions is what streams use. */
export interface KnownMap {
  get(name: string): string | null | undefined;
  has(name: string): boolean;
  set(name: string, version: string | null): unknown;
  delete(name: string): boolean;
  keys(): Iterable<string>;
}

const gone = Symbol('not known');

/**
 * `known` for a stream that follows its view: a reference to the view's name -> version map (shared
 * by every stream of the view) plus the names that differ from it. When the client holds exactly the
 * view's versions it is a pointer instead of 3,000 entries per originating Envoy. A client that wants
 * few of the view's names (a terminator's endpoints) keeps an explicit map instead (no base).
 */
export class KnownVersions implements KnownMap {
  private base?: ReadonlyMap<string, string>;
  private readonly overrides = new Map<string, string | null | typeof gone>();

  get(name: string): string | null | undefined {
    const o = this.overrides.get(name);
    if (o !== undefined) return o === gone ? undefined : o;
    return this.base?.get(name);
  }
  has(name: string): boolean {
    return this.get(name) !== undefined;
  }
  set(name: string, version: string | null): this {
    if (this.base?.get(name) === version && version !== null) this.overrides.delete(name);
    else this.overrides.set(name, version);
    return this;
  }
  delete(name: string): boolean {
    const had = this.has(name);
    if (this.base?.has(name)) this.overrides.set(name, gone);
    else this.overrides.delete(name);
    return had;
  }
  *keys(): Iterable<string> {
    for (const name of this.base?.keys() ?? []) if (this.has(name)) yield name;
    for (const [name, v] of this.overrides) if (v !== gone && !this.base?.has(name)) yield name;
  }
  /** Names where what the client holds differs from the base (or every name held, without one). */
  get differences(): number {
    return this.overrides.size;
  }
  /** Whether the client's state is kept as differences from a view's versions. */
  get based(): boolean {
    return this.base !== undefined;
  }
  /** Whether the client holds nothing this stream knows of (a first request without initial versions). */
  get empty(): boolean {
    return this.base === undefined && this.overrides.size === 0;
  }

  /** The client holds exactly `versions`, besides names it was told do not exist. */
  adopt(versions: ReadonlyMap<string, string>, missing: readonly string[]): void {
    this.base = versions;
    clearIfAny(this.overrides);
    for (const name of missing) this.overrides.set(name, null);
  }

  /**
   * After a look: the view's versions are now `versions`. `looked` holds every name whose version may
   * differ between the previous base and `versions` (the look's candidates); undefined after a full
   * look, when the previous base may be unrelated. What the client holds does not change, only how it
   * is stored: as differences from `versions` when they are few, else as an explicit map.
   */
  rebase(versions: ReadonlyMap<string, string>, looked?: Iterable<string>): void {
    if (this.base === versions) return; // already differences from these versions
    if (looked && !this.base) return; // explicit: does not depend on the view's versions
    // Every name an override has is among these, so each override is set or deleted below: not cleared
    // and refilled, which for a stream's long-lived map allocates a new table in old space every change.
    const names = looked
      ? new Set([...looked, ...this.overrides.keys()])
      : new Set([...this.keys(), ...versions.keys(), ...this.overrides.keys()]);
    const held = [...names].map((name) => [name, this.get(name)] as const);
    this.base = versions;
    for (const [name, version] of held) {
      const differs = version === undefined ? versions.has(name) : version !== versions.get(name);
      if (differs) this.overrides.set(name, version === undefined ? gone : version);
      else this.overrides.delete(name);
    }
    if (!looked && this.overrides.size > versions.size / 2) {
      this.base = undefined;
      clearIfAny(this.overrides);
      for (const [name, version] of held) if (version !== undefined) this.overrides.set(name, version);
    }
  }
}

export function newSubscription(): DeltaSubscription {
  return {
    started: false,
    wildcard: false,
    names: new Set(),
    known: new KnownVersions(),
    recheck: new Set(),
    namesVersion: 0,
    namesDropped: 0,
    droppedNames: [],
    nameBytes: 0,
  };
}

/** How many dropped names a subscription remembers. */
const droppedNamesKept = 16;

export function decideDelta(
  request: DeltaRequest,
  state: Pick<DeltaSubscription, 'started' | 'lastNonce'>,
): DeltaDecision {
  if (!state.started) return { kind: 'subscribe' };
  if (request.responseNonce === '') return { kind: 'update' };
  if (request.responseNonce !== state.lastNonce) return { kind: 'stale' };
  if (request.errorMessage !== undefined) return { kind: 'nack', message: request.errorMessage };
  return { kind: 'ack' };
}

/**
 * Applies a request's subscribe/unsubscribe lists (and, on the first request, the wildcard default
 * and initial_resource_versions). `wildcardKind`: LDS and CDS, where an empty first request means
 * "everything". Names it edits go to `recheck`. Returns true when the next look must check every name
 * (the first request, or the wildcard came or went).
 */
export function applySubscription(state: DeltaSubscription, request: DeltaRequest, wildcardKind: boolean): boolean {
  if (!state.started) {
    state.started = true;
    state.namesVersion++;
    state.wildcard = wildcardKind && (request.subscribe.length === 0 || request.subscribe.includes('*'));
    for (const name of request.subscribe) if (name !== '*') addName(state, name);
    // The client tells us what it kept from a previous stream: only differences are sent.
    for (const [name, version] of Object.entries(request.initialVersions)) state.known.set(name, version);
    return true;
  }
  let everything = false;
  if (request.subscribe.length > 0 || request.unsubscribe.length > 0) state.namesVersion++;
  for (const name of request.subscribe) {
    if (name === '*') {
      everything ||= wildcardKind && !state.wildcard;
      state.wildcard = wildcardKind;
      continue;
    }
    addName(state, name);
    // The spec: a (re)subscribed name must be sent even if we think the client has it.
    state.known.delete(name);
    state.recheck.add(name);
  }
  for (const name of request.unsubscribe) {
    if (name === '*') {
      everything ||= state.wildcard;
      if (state.wildcard) {
        state.namesDropped++;
        state.droppedNames.length = 0;
      }
      state.wildcard = false;
      for (const n of [...state.known.keys()]) if (!state.names.has(n)) state.known.delete(n);
      continue;
    }
    if (state.names.delete(name)) {
      state.nameBytes -= name.length;
      state.namesDropped++;
      state.droppedNames.push(name);
      if (state.droppedNames.length > droppedNamesKept) state.droppedNames.shift();
    }
    if (!state.wildcard) state.known.delete(name);
    state.recheck.add(name);
  }
  return everything;
}

function addName(state: DeltaSubscription, name: string): void {
  if (state.names.has(name)) return;
  state.names.add(name);
  state.nameBytes += name.length;
}

export interface DeltaChanges {
  /** Names to send, sorted (possibly shared by every stream of a view: never modified). */
  send: readonly string[];
  /** Names to put in removed_resources, sorted. */
  removed: string[];
}

/**
 * What one response must carry for the subscription, given the current resources (name -> version).
 * `candidates` narrows the look to names that changed since the stream was last reconciled (cost
 * grows with the change, not with everything); without it every relevant name is checked.
 * Updates `state.known` to what the client will hold once it applies the response.
 *
 * A subscribed name that does not exist is reported once in removed_resources (so the client need
 * not wait for a timeout) and sent as soon as it appears.
 */
export function deltaChanges(
  state: DeltaSubscription,
  versions: ReadonlyMap<string, string>,
  candidates?: Iterable<string>,
): DeltaChanges {
  if (!candidates) {
    const first = firstLook(state, versions);
    if (first) return first;
  }
  const send: string[] = [];
  const removed: string[] = [];
  const look = candidates ? new Set(candidates) : allRelevant(state, versions);
  for (const name of look) {
    const version = versions.get(name);
    const desired = state.names.has(name) || (state.wildcard && version !== undefined);
    const had = state.known.get(name);
    if (desired && version !== undefined) {
      if (had !== version) {
        send.push(name);
        state.known.set(name, version);
      }
    } else if (desired) {
      // Subscribed explicitly, does not exist (any more): say so once.
      if (had !== null) {
        removed.push(name);
        state.known.set(name, null);
      }
    } else if (state.known.has(name)) {
      // Wildcard resource that went away (or a stale entry): tell a client that had it.
      if (had !== null && state.wildcard) removed.push(name);
      state.known.delete(name);
    }
  }
  return { send: send.sort(), removed: removed.sort() };
}

/**
 * After deltaChanges: the view's versions are `versions` now; `candidates` (undefined after a full look)
 * are the names the look checked, every name changed since the previous look among them.
 */
export function settleKnown(
  state: DeltaSubscription,
  versions: ReadonlyMap<string, string>,
  candidates: Iterable<string> | undefined,
): void {
  if (state.known instanceof KnownVersions) state.known.rebase(versions, candidates);
}

/**
 * deltaChanges for a client that holds nothing yet (1,000 Envoys connecting): every subscribed name
 * that exists is sent, every other one reported missing, and when that is every name of the view,
 * `known` becomes the view's versions as they are (no per-name copy, no sort per stream).
 */
function firstLook(state: DeltaSubscription, versions: ReadonlyMap<string, string>): DeltaChanges | undefined {
  const known = state.known;
  if (!(known instanceof KnownVersions) || !known.empty) return undefined;
  const removed: string[] = [];
  let send: string[] = [];
  for (const name of state.names) {
    if (!versions.has(name)) removed.push(name);
    else if (!state.wildcard) send.push(name);
  }
  removed.sort();
  if (state.wildcard || send.length === versions.size) {
    send = sortedNames(versions);
    known.adopt(versions, removed);
    return { send, removed };
  }
  for (const name of send) known.set(name, versions.get(name)!);
  for (const name of removed) known.set(name, null);
  return { send: send.sort(), removed };
}

/** The names of a view's versions map, sorted: one array for every stream of the view (never modified). */
const sortedNamesOf = new WeakMap<ReadonlyMap<string, string>, string[]>();
function sortedNames(versions: ReadonlyMap<string, string>): string[] {
  let names = sortedNamesOf.get(versions);
  if (!names) sortedNamesOf.set(versions, (names = [...versions.keys()].sort()));
  return names;
}

function allRelevant(state: DeltaSubscription, versions: ReadonlyMap<string, string>): Set<string> {
  const out = new Set<string>(state.names);
  for (const name of state.known.keys()) out.add(name);
  if (state.wildcard) for (const name of versions.keys()) out.add(name);
  return out;
}
