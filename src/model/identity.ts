// Tunnels whose content did not change keep the identity they had in the previous model.
import type { Tunnel } from './tunnel.js';

/**
 * The previous model's tunnel when nothing in it changed, so everything built from it downstream
 * (translated pieces, encodings) is found by identity. Cheap: unchanged Services hand back the same
 * settings and endpoint objects, so most comparisons are of references.
 */
export function keepIdentity(t: Tunnel, old: Tunnel | undefined): Tunnel {
  if (!old) return t;
  const same =
    t.key === old.key &&
    t.port === old.port &&
    t.portName === old.portName &&
    t.clusterIP === old.clusterIP &&
    t.authority === old.authority &&
    t.service.namespace === old.service.namespace &&
    t.service.name === old.service.name &&
    t.origin?.file === old.origin?.file &&
    t.origin?.line === old.origin?.line &&
    t.origin?.kube?.uid === old.origin?.kube?.uid &&
    t.via?.name === old.via?.name &&
    t.via?.port === old.via?.port &&
    sameList(t.split, old.split, (a, b) => a.tunnelKey === b.tunnelKey && a.weight === b.weight) &&
    sameList(
      t.endpoints,
      old.endpoints,
      (a, b) =>
        a === b ||
        (a.address === b.address &&
          a.port === b.port &&
          a.serviceAccount === b.serviceAccount &&
          sameJson(a.labels, b.labels)),
    ) &&
    sameJson(t.settings, old.settings) &&
    sameJson(t.servedBy, old.servedBy) &&
    t.servedCertified === old.servedCertified;
  return same ? old : t;
}

function sameList<T>(a: readonly T[] | undefined, b: readonly T[] | undefined, same: (x: T, y: T) => boolean): boolean {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  return a.every((x, i) => same(x, b[i]!));
}

function sameJson(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}
