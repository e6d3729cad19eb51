// Whether an Envoy holds the whole of its view's current snapshot: every type looked at since the
// snapshot last changed, everything sent ACKed (a NACK is not), and every resource of a type that is
// asked for by name (routes, endpoints) asked for: a listener whose new route the Envoy has not yet
// requested is still warming. Read from the streams' own state; make-before-break (cache/rollout-stage.ts)
// waits on it.
import { pushOrder } from '../envoy/protos.js';
import type { Snapshot, TypeSnapshot } from '../cache/snapshot.js';
import type { XdsStream } from './server.js';
import { DeltaStream } from './delta.js';

/** `snapshot`: the stream's view's current snapshot (SnapshotCache.peek). */
export function holdsSnapshot(stream: XdsStream, snapshot: Snapshot | undefined): boolean {
  if (!snapshot) return false;
  for (const kind of pushOrder) {
    const ts = snapshot[kind];
    const ok = stream instanceof DeltaStream ? deltaHolds(stream, kind, ts) : sotwHolds(stream, kind, ts);
    if (!ok) return false;
  }
  return true;
}

function sotwHolds(
  stream: Exclude<XdsStream, DeltaStream>,
  kind: (typeof pushOrder)[number],
  ts: TypeSnapshot,
): boolean {
  const state = stream.types.get(kind);
  if (!state?.requested) return ts.resources.size === 0;
  if (state.generation !== ts.generation || state.ledger.unsettled || state.ackedSeq !== state.lastSeq) return false;
  if (state.wildcard) return true;
  // SotW subscriptions are immutable sets shared by streams that sent the same list: asked once.
  let byNames = askedMemo.get(ts);
  if (!byNames) askedMemo.set(ts, (byNames = new WeakMap()));
  let answer = byNames.get(state.names);
  if (answer === undefined) byNames.set(state.names, (answer = asked(ts, state.names)));
  return answer;
}

const askedMemo = new WeakMap<TypeSnapshot, WeakMap<ReadonlySet<string>, boolean>>();

function deltaHolds(stream: DeltaStream, kind: (typeof pushOrder)[number], ts: TypeSnapshot): boolean {
  const state = stream.types.get(kind);
  if (!state?.started) return ts.resources.size === 0;
  if (state.generation !== ts.generation || state.owesAnswer || state.ackedNonce !== state.lastNonce) return false;
  return state.wildcard || asked(ts, state.names);
}

function asked(ts: TypeSnapshot, names: ReadonlySet<string>): boolean {
  if (names.size < ts.resources.size) return false;
  for (const name of ts.resources.keys()) if (!names.has(name)) return false;
  return true;
}
