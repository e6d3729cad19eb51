import type { ResourceObject } from '../envoy/encode.js';
import type { ResourceKind } from '../envoy/protos.js';
import type { Diagnostic } from '../model/diagnostics.js';

export interface NamedResource {
  name: string;
  object: ResourceObject;
  /**
   * For resources assembled from memoised parts: a string naming exactly those parts. Equal keys mean
   * equal content, so the encoder reuses the previous encoding without looking at the object.
   */
  key?: string;
}

export type ResourceSet = Record<ResourceKind, NamedResource[]>;

export interface Translation {
  resources: ResourceSet;
  diagnostics: Diagnostic[];
}

export function emptyResourceSet(): ResourceSet {
  return { listener: [], route: [], cluster: [], endpoint: [] };
}

export function sortResourceSet(set: ResourceSet): ResourceSet {
  const byName = (a: NamedResource, b: NamedResource) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  return {
    listener: [...set.listener].sort(byName),
    route: [...set.route].sort(byName),
    cluster: [...set.cluster].sort(byName),
    endpoint: [...set.endpoint].sort(byName),
  };
}
