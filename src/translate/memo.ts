// Per-tunnel memoisation of translated pieces. A tunnel whose content did not change keeps its object
// identity across model rebuilds (cache/changes.ts), so its pieces are found here instead of being
// rebuilt, and the encoder finds their bytes by object identity: a change re-translates and
// re-encodes only the tunnels it touches. Entries live exactly as long as their tunnel object.
import type { Tunnel } from '../model/tunnel.js';

const pieces = new WeakMap<Tunnel, Map<string, unknown>>();

export function memo<T>(tunnel: Tunnel, key: string, build: () => T): T {
  let map = pieces.get(tunnel);
  if (!map) {
    map = new Map();
    pieces.set(tunnel, map);
  }
  if (map.has(key)) return map.get(key) as T;
  const value = build();
  map.set(key, value);
  return value;
}

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
