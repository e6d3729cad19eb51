// Per-tunnel memoisation of translated pieces. A tunnel whose content did not change keeps its object
// identity across model rebuilds (cache/changes.ts), so its pieces are found in the memo instead of
// being rebuilt, and the encoder finds their bytes by object identity: a change re-translates and
// re-encodes only the tunnels it touches. The memo is the caller's (one per cache: cache/pieces.ts);
// translation without one builds every piece anew, with the same result.
import { contentVersion } from '../envoy/encode.js';
import type { Tunnel } from '../model/tunnel.js';

export interface PieceMemo {
  /** The piece `key` of `tunnel`: `build()` the first time, the same value for as long as the tunnel lives. */
  piece<T>(tunnel: Tunnel, key: string, build: () => T): T;
}

export const noMemo: PieceMemo = { piece: (_tunnel, _key, build) => build() };

// Module-level, yet invisible: an id names one object for as long as it lives and is never reused, so
// equal ids mean the same object in any cache of the process.
const ids = new WeakMap<object, number>();
let nextId = 0;

/** A number naming one object for as long as it lives: assembled resources are keyed by their parts' ids. */
export function objectId(o: object): number {
  let id = ids.get(o);
  if (id === undefined) {
    id = ++nextId;
    ids.set(o, id);
  }
  return id;
}

const contentKeys = new WeakMap<object, string>();

/**
 * A name for an object's JSON content, computed once per object: equal content, equal name. Keys
 * assembled resources whose parts are rebuilt with unchanged content: a moved endpoint makes a new
 * tunnel object, but its virtual hosts, which do not depend on endpoints, read the same, so the
 * routes of the addresses it kept are neither encoded nor sent again.
 */
export function contentKey(o: object): string {
  let key = contentKeys.get(o);
  if (key === undefined) {
    key = contentVersion(JSON.stringify(o));
    contentKeys.set(o, key);
  }
  return key;
}
