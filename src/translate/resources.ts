import type { ResourceObject } from '../envoy/encode.js';
import type { ResourceKind } from '../envoy/protos.js';
import type { Diagnostic } from '../model/diagnostics.js';

export interface NamedResource {
  name: string;
  /** The resource, or how to build it: a per-tunnel resource is built only when its encoding is not known yet. */
  object: ResourceObject | (() => ResourceObject);
  /**
   * For resources assembled from memoised parts: a string naming exactly those parts. Equal keys mean
   * equal content, so the encoder reuses the previous encoding without looking at the object.
   */
  key?: string;
  /**
   * For a resource made from one tunnel alone: that tunnel and which of its resources this is. The
   * encoder keeps the encoding per (owner, piece) for as long as the tunnel object lives, as the
   * translation memo does for parts.
   */
  owner?: object;
  piece?: string;
}

export function objectOf(r: NamedResource): ResourceObject {
  return typeof r.object === 'function' ? r.object() : r.object;
}

export type ResourceSet = Record<ResourceKind, NamedResource[]>;

export interface Translation {
  resources: ResourceSet;
  diagnostics: Diagnostic[];
}

export function emptyResourceSet(): ResourceSet {
  return { listener: [], route: [], cluster: [], endpoint: [], extension: [], secret: [] };
}

export function sortResourceSet(set: ResourceSet): ResourceSet {
  const byName = (a: NamedResource, b: NamedResource) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  return {
    listener: [...set.listener].sort(byName),
    route: [...set.route].sort(byName),
    cluster: [...set.cluster].sort(byName),
    endpoint: [...set.endpoint].sort(byName),
    extension: [...set.extension].sort(byName),
    secret: [...set.secret].sort(byName),
  };
}
