// The translation memo of one cache (translate/memo.ts): per tunnel object, the pieces translated from
// it. Remembers them for as long as the tunnel object lives; a changed tunnel is a new object, so its
// pieces are built again and the old ones go with the old object.
import type { Tunnel } from '../model/tunnel.js';
import type { PieceMemo } from '../translate/memo.js';

export class TunnelPieces implements PieceMemo {
  private readonly byTunnel = new WeakMap<Tunnel, Map<string, unknown>>();

  piece<T>(tunnel: Tunnel, key: string, build: () => T): T {
    let map = this.byTunnel.get(tunnel);
    if (!map) this.byTunnel.set(tunnel, (map = new Map()));
    if (map.has(key)) return map.get(key) as T;
    const value = build();
    map.set(key, value);
    return value;
  }
}
