// What a node of a given view would be served, computed without any server or Envoy: the dry run
// behind `tunnel-shim render` and the golden translation tests. It asks a cache, as `serve` does.
import { SnapshotCache } from './cache/cache.js';
import type { NodeView } from './envoy/node-view.js';
import { kindPlural, pushOrder } from './envoy/protos.js';
import { buildModel } from './model/build.js';
import { formatDiagnostic, type Diagnostic } from './model/diagnostics.js';
import { defaultModelOptions, type ModelOptions } from './model/tunnel.js';
import type { SourceState } from './sources/source.js';
import { translate } from './translate/index.js';

export interface Rendered {
  /** `secrets` only for a node that is served some (private keys redacted). */
  resources: Record<'clusters' | 'endpoints' | 'extensions' | 'listeners' | 'routes', unknown[]> & {
    secrets?: unknown[];
  };
  diagnostics: Diagnostic[];
}

export function render(state: SourceState, view: NodeView, options: ModelOptions = defaultModelOptions): Rendered {
  const model = buildModel(state.objects, options);
  const cache = new SnapshotCache(translate);
  cache.setModel(model);
  const { snapshot, diagnostics } = cache.peek(view);
  const objects = cache.objects(view)!;
  const resources = {
    clusters: [],
    endpoints: [],
    extensions: [],
    listeners: [],
    routes: [],
    secrets: [],
  } as Rendered['resources'];
  // What is served: the resources that validated and encoded, shown as the Envoy JSON they came from.
  for (const kind of pushOrder)
    resources[kindPlural[kind]] = [...snapshot![kind].resources.keys()].map((name) => objects[kind].get(name));
  if (resources.secrets?.length === 0) delete resources.secrets;
  return { resources, diagnostics: [...state.diagnostics, ...model.diagnostics, ...diagnostics] };
}

export function diagnosticLines(diagnostics: Diagnostic[]): string[] {
  return diagnostics.map(formatDiagnostic);
}
