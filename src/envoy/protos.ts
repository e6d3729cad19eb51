// Loads Envoy's API protos at run time from the pinned npm packages listed in protos/manifest.json.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const require = createRequire(import.meta.url);

interface Manifest {
  roots: { package: string; dir: string }[];
  entries: string[];
}

function findManifest(): string {
  // Works from src/ (tsx, vitest) and from dist/src/ (built): walk up to the repo's protos/.
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'protos', 'manifest.json');
    if (fs.existsSync(candidate)) return candidate;
  }
  throw new Error("protos/manifest.json not found above the shim's own files");
}

function packageDir(name: string): string {
  return path.dirname(require.resolve(`${name}/package.json`));
}

function loadRoot(): protobuf.Root {
  const manifest = JSON.parse(fs.readFileSync(findManifest(), 'utf8')) as Manifest;
  const includeDirs = manifest.roots.map((r) => path.join(packageDir(r.package), r.dir));
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    for (const dir of includeDirs) {
      const candidate = path.join(dir, target);
      if (fs.existsSync(candidate)) return candidate;
    }
    return target;
  };
  root.loadSync(manifest.entries, { keepCase: true });
  root.resolveAll();
  return root;
}

let cached: protobuf.Root | undefined;

/** The protobufjs root with every Envoy type the shim serves, loaded once per process. */
export function envoyRoot(): protobuf.Root {
  cached ??= loadRoot();
  return cached;
}

const types = new Map<string, protobuf.Type>();

/** The type by name; remembered, since encoding and validation ask for the same few types constantly. */
export function lookupType(fullName: string): protobuf.Type {
  let type = types.get(fullName);
  if (!type) types.set(fullName, (type = envoyRoot().lookupType(fullName)));
  return type;
}

const fullNames = new WeakMap<protobuf.ReflectionObject, string>();

/** `type.fullName`, remembered: protobufjs rebuilds the string from the parents on every read. */
export function fullNameOf(type: protobuf.ReflectionObject): string {
  let name = fullNames.get(type);
  if (name === undefined) fullNames.set(type, (name = type.fullName));
  return name;
}

export const TypeUrl = {
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  endpoint: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  /** ECDS: a filter's config, named by a filter's `config_discovery` (translate/connect-manager.ts says why). */
  extension: 'type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig',
  /** SDS over ADS: a node's certificate and trust bundle (translate/secrets.ts). */
  secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
} as const;

export type ResourceKind = keyof typeof TypeUrl;
export type TypeUrlString = (typeof TypeUrl)[ResourceKind];

/**
 * Secrets, clusters and endpoints first, then what uses them: make before break. A filter config a listener
 * already names goes before the listener's update; a new name is asked for once the listener arrives.
 */
export const pushOrder: ResourceKind[] = ['secret', 'cluster', 'endpoint', 'extension', 'listener', 'route'];

/** Each kind's plural, as `render` and `status --output` name their lists. */
export const kindPlural = {
  cluster: 'clusters',
  endpoint: 'endpoints',
  extension: 'extensions',
  secret: 'secrets',
  listener: 'listeners',
  route: 'routes',
} as const satisfies Record<ResourceKind, string>;

export const kindOfTypeUrl = new Map<string, ResourceKind>(
  (Object.entries(TypeUrl) as [ResourceKind, string][]).map(([kind, url]) => [url, kind]),
);

/** LDS and CDS are state-of-the-world types: every response carries all of them. */
export function isWildcardKind(kind: ResourceKind): boolean {
  return kind === 'listener' || kind === 'cluster';
}

export function messageNameOf(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}
