// tunnels x node view -> Envoy resources. Pure and deterministic (sorted output).
import type { Model } from '../model/tunnel.js';
import { translateOriginate } from './originate.js';
import { sortResourceSet, type Translation } from './resources.js';
import { translateRelay } from './relay.js';
import { noMemo, type PieceMemo } from './memo.js';
import { translateSecrets } from './secrets.js';
import { tunnelsConcerning } from './scope.js';
import { translateTerminate } from './terminate.js';
import { nodeCertified } from './tls.js';
import type { NodeView } from './view.js';

/** `memo`: where per-tunnel pieces are kept between calls (the cache's); the result is the same without. */
export function translate(model: Model, view: NodeView, memo: PieceMemo = noMemo): Translation {
  const { resources, diagnostics } = translateRole(model, view, memo);
  resources.secret = translateSecrets(model, view);
  return { resources: sortResourceSet(resources), diagnostics };
}

function translateRole(model: Model, view: NodeView, memo: PieceMemo): Translation {
  const certified = nodeCertified(model, view);
  if (view.role === 'originate') return translateOriginate(model.tunnels, view, memo, certified);
  if (view.role === 'relay')
    return { resources: translateRelay(model.tunnels, view, certified).resources, diagnostics: [] };
  const resources = translateTerminate(tunnelsConcerning(model.tunnels, view), view, memo).resources;
  return { resources, diagnostics: [] };
}

export type { NodeView, Role } from './view.js';
export type { Translation, ResourceSet, NamedResource } from './resources.js';
