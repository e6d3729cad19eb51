// Whether an Envoy holds the whole of its view's current snapshot: every type looked at since the
// snapshot last changed, everything sent ACKed (a NACK is not), and every resource of a type that is
// asked for by name (routes, endpoints) asked for: a listener whose new route the Envoy has not yet
// requested is still warming. Read from the streams' own state (BaseStream.holdsView);
// make-before-break (cache/rollout-stage.ts) waits on it.
import type { ServedSnapshot } from '../cache/watch.js';
import { pushOrder, type ResourceKind } from '../envoy/protos.js';
import type { DeltaTypeState } from './delta.js';
import type { TypeState } from './sotw-stream.js';

export function sotwHoldsView(types: ReadonlyMap<ResourceKind, TypeState>, snapshot?: ServedSnapshot): boolean {
  if (!snapshot) return false;
  // Asked for every stream after every model change while an endpoint is on hold: a plain loop.
  for (const kind of pushOrder) {
    const state = types.get(kind);
    const ts = snapshot[kind];
    if (!state?.requested) {
      if (ts.resources.size > 0) return false;
      continue;
    }
    if (state.generation !== ts.generation || state.ledger.unsettled || state.ackedSeq !== state.lastSeq) return false;
    if (state.wildcard) continue;
    // SotW subscriptions are immutable sets shared by streams that sent the same list: asked once per
    // set and content (ServedType.coveredBy), and the stream keeps the last answer.
    const memo = state.coverage;
    if (memo?.names !== state.names || memo.resources !== ts.resources) {
      state.coverage = { names: state.names, resources: ts.resources, covered: ts.coveredBy(state.names) };
    }
    if (!state.coverage!.covered) return false;
  }
  return true;
}

export function deltaHoldsView(types: ReadonlyMap<ResourceKind, DeltaTypeState>, snapshot?: ServedSnapshot): boolean {
  if (!snapshot) return false;
  return pushOrder.every((kind) => {
    const state = types.get(kind);
    const ts = snapshot[kind];
    if (!state?.started) return ts.resources.size === 0;
    if (state.generation !== ts.generation || state.owesAnswer || state.ackedNonce !== state.lastNonce) return false;
    if (state.wildcard) return true;
    // Delta names are the stream's own, modified in place: remembered per names version and
    // generation, with the resources the names lacked. Only those, the resources changed since and
    // the names dropped since can be missing now: an endpoint change or a Service added or removed
    // costs each of 1,000 streams a few lookups, not 1,000.
    const memo = state.coverage;
    if (memo?.namesVersion === state.namesVersion && memo.generation === ts.generation) {
      return memo.missing?.length === 0;
    }
    const drops = state.namesDropped - (memo?.namesDropped ?? 0);
    const since = memo?.missing && drops <= state.droppedNames.length ? ts.changedSince(memo.generation) : undefined;
    const candidates =
      since && memo?.missing
        ? [memo.missing, since, state.droppedNames.slice(state.droppedNames.length - drops)]
        : [ts.resources.keys()];
    const missing = lacking(state.names, ts.resources, candidates);
    state.coverage = {
      namesVersion: state.namesVersion,
      namesDropped: state.namesDropped,
      generation: ts.generation,
      missing,
    };
    return missing?.length === 0;
  });
}

/** More resources missing than this are not listed: the next look then checks every name. */
const maxListed = 16;

/** The resources among `candidates` that `names` lacks; undefined when there are too many to list. */
function lacking(
  names: ReadonlySet<string>,
  resources: ReadonlyMap<string, unknown>,
  candidates: Iterable<string>[],
): string[] | undefined {
  const out: string[] = [];
  for (const list of candidates) {
    for (const name of list) {
      if (names.has(name) || !resources.has(name) || out.includes(name)) continue;
      if (out.length === maxListed) return undefined;
      out.push(name);
    }
  }
  return out;
}
