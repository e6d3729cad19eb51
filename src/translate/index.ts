// tunnels x node view -> Envoy resources. Pure and deterministic (sorted output).
import type { Model } from '../model/tunnel.js';
import { translateOriginate } from './originate.js';
import { sortResourceSet, type Translation } from './resources.js';
import { translateRelay } from './relay.js';
import { translateSecrets } from './secrets.js';
import { tunnelsConcerning } from './scope.js';
import { translateTerminate } from './terminate.js';
import type { NodeView } from './view.js';

export function translate(model: Model, view: NodeView): Translation {
  const { resources, diagnostics } = translateRole(model, view);
  resources.secret = translateSecrets(model, view);
  return { resources: sortResourceSet(resources), diagnostics };
}

function translateRole(model: Model, view: NodeView): Translation {
  if (view.role === 'originate') return translateOriginate(model.tunnels, view);
  if (view.role === 'relay') return { resources: translateRelay(model.tunnels, view).resources, diagnostics: [] };
  return { resources: translateTerminate(tunnelsConcerning(model.tunnels, view), view).resources, diagnostics: [] };
}

export type { NodeView, Role } from './view.js';
export type { Translation, ResourceSet, NamedResource } from './resources.js';
