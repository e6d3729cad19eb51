// tunnels x node view -> Envoy resources. Pure and deterministic (sorted output).
import type { Model } from '../model/tunnel.js';
import { translateOriginate } from './originate.js';
import { sortResourceSet, type Translation } from './resources.js';
import { translateRelay } from './relay.js';
import { noMemo, type PieceMemo } from './memo.js';
import { tunnelsConcerning } from './scope.js';
import { translateTerminate } from './terminate.js';
import type { NodeView } from './view.js';

/** `memo`: where per-tunnel pieces are kept between calls (the cache's); the result is the same without. */
export function translate(model: Model, view: NodeView, memo: PieceMemo = noMemo): Translation {
  if (view.role === 'originate') {
    const { resources, diagnostics } = translateOriginate(model.tunnels, view, memo);
    return { resources: sortResourceSet(resources), diagnostics };
  }
  if (view.role === 'relay')
    return { resources: sortResourceSet(translateRelay(model.tunnels, view).resources), diagnostics: [] };
  return {
    resources: sortResourceSet(translateTerminate(tunnelsConcerning(model.tunnels, view), view, memo).resources),
    diagnostics: [],
  };
}

export type { NodeView, Role } from './view.js';
export type { Translation, ResourceSet, NamedResource } from './resources.js';
