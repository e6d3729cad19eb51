// The Kubernetes objects the shim reads, as both sources deliver them (only the fields it uses).

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec?: unknown;
  [key: string]: unknown;
}

export type FieldPath = (string | number)[];

/** Where an object came from, so a diagnostic can name the file and line. */
export interface Origin {
  file?: string;
  /** 1-based line of the object's first line. */
  line?: number;
  /** Line of a field inside the object, when the source can tell. */
  lineOf?: (path: FieldPath) => number | undefined;
  /** The object's identity in the API server, so a diagnostic can become a Kubernetes Event on it. */
  kube?: { apiVersion: string; uid: string };
}

export interface SourcedObject {
  object: KubeObject;
  origin?: Origin;
}

export interface ObjectRef {
  kind: string;
  namespace: string;
  name: string;
}

export function refOf(object: KubeObject): ObjectRef {
  return {
    kind: object.kind ?? 'Unknown',
    namespace: object.metadata?.namespace ?? 'default',
    name: object.metadata?.name ?? '',
  };
}

export function refKey(ref: ObjectRef): string {
  return `${ref.kind}/${ref.namespace}/${ref.name}`;
}

// The kinds the model reads; the file source drops every other object right after parsing.
export const isService = (o: KubeObject) => o.kind === 'Service' && (o.apiVersion ?? 'v1') === 'v1';
export const isPod = (o: KubeObject) => o.kind === 'Pod' && (o.apiVersion ?? 'v1') === 'v1';
const inGroup = (o: KubeObject, group: string) => String(o.apiVersion ?? '').startsWith(`${group}/`);
export const isEndpointSlice = (o: KubeObject) => o.kind === 'EndpointSlice' && inGroup(o, 'discovery.k8s.io');
export const isTCPRoute = (o: KubeObject) => o.kind === 'TCPRoute' && inGroup(o, 'gateway.networking.k8s.io');
export const isSecret = (o: KubeObject) => o.kind === 'Secret' && (o.apiVersion ?? 'v1') === 'v1';
export const isModelObject = (o: KubeObject) =>
  isService(o) || isPod(o) || isEndpointSlice(o) || isTCPRoute(o) || isSecret(o);
