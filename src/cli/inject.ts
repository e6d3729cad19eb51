// `tunnel-shim inject`: Kubernetes manifests in, the same manifests out with Envoy sidecars added.
// Edits go through the yaml library's Document API, so comments, key order and quoting survive, and a
// document with nothing to inject (or injected already) is written back as the very bytes it was read as.
import YAML, { isMap, isSeq, LineCounter, type Document, type Node, type YAMLMap, type YAMLSeq } from 'yaml';
import {
  bootstrapVolume,
  configMapName,
  containerName,
  envoyContainer,
  injectedAnnotation,
  injectRoles,
  type InjectRole,
  type SidecarOptions,
} from './inject-sidecar.js';

export interface InjectOptions extends SidecarOptions {
  roles: readonly InjectRole[];
}

export interface InjectResult {
  /** The manifests with sidecars; empty when there are errors (nothing half-injected goes to kubectl). */
  output: string;
  /** `error: FILE:LINE: Kind ns/name: field: message`, one per workload that cannot be injected. */
  errors: string[];
  injected: number;
}

/** Where each workload kind keeps its pod template (metadata and spec). */
const podPaths: Record<string, { metadata: string[]; spec: string[] }> = {
  Pod: { metadata: ['metadata'], spec: ['spec'] },
  Deployment: { metadata: ['spec', 'template', 'metadata'], spec: ['spec', 'template', 'spec'] },
  StatefulSet: { metadata: ['spec', 'template', 'metadata'], spec: ['spec', 'template', 'spec'] },
  DaemonSet: { metadata: ['spec', 'template', 'metadata'], spec: ['spec', 'template', 'spec'] },
};
export const injectableKinds = Object.keys(podPaths);

export function injectManifests(file: string, text: string, o: InjectOptions): InjectResult {
  const lineCounter = new LineCounter();
  const docs = YAML.parseAllDocuments(text, { lineCounter });
  const errors: string[] = [];
  let injected = 0;
  const pieces = docs.map((doc, i) => {
    // From this document's start (the file's, for the first) to the next one's: comments and markers included.
    const original = text.slice(i === 0 ? 0 : doc.range[0], docs[i + 1]?.range[0] ?? text.length);
    if (doc.errors.length > 0) {
      const [first] = doc.errors;
      errors.push(`error: ${file}:${lineCounter.linePos(first!.pos[0]).line}: ${first!.message.split('\n')[0]}`);
      return original;
    }
    const where = (node: Node | undefined) => `${file}:${lineCounter.linePos(node?.range?.[0] ?? doc.range[0]).line}`;
    let changed = false;
    for (const workload of workloadsOf(doc.contents)) {
      const result = injectWorkload(doc, workload, o);
      if ('error' in result) errors.push(`error: ${where(result.node)}: ${result.error}`);
      else if (result.changed) {
        changed = true;
        injected += 1;
      }
    }
    return changed ? doc.toString(styleOf(original)) : original;
  });
  return { output: errors.length > 0 ? '' : pieces.join(''), errors, injected };
}

/** The document's objects: itself, or the items of a `kind: List`. */
function workloadsOf(contents: unknown): YAMLMap[] {
  if (!isMap(contents)) return [];
  if (contents.get('kind') === 'List') {
    const items = contents.get('items');
    return isSeq(items) ? items.items.filter(isMap) : [];
  }
  return [contents];
}

type Outcome = { changed: boolean } | { error: string; node?: Node };

function injectWorkload(doc: Document, workload: YAMLMap, o: InjectOptions): Outcome {
  const kind = String(workload.get('kind') ?? '');
  const paths = podPaths[kind];
  if (!paths) return { changed: false };
  const name = String(workload.getIn(['metadata', 'name']) ?? '');
  const namespace = workload.getIn(['metadata', 'namespace']);
  const label = `${kind} ${namespace ? `${String(namespace)}/` : ''}${name}`;
  const fail = (path: string[], message: string): Outcome => ({
    error: `${label}: ${path.join('.')}: ${message}`,
    node: (workload.getIn(path, true) as Node | undefined) ?? workload,
  });

  const spec = workload.getIn(paths.spec);
  if (!isMap(spec)) return fail(paths.spec, 'no pod spec to inject into');
  const containers = spec.get('containers');
  if (!isSeq(containers)) return fail([...paths.spec, 'containers'], 'no containers list');
  if (spec.get('hostNetwork') === true) {
    return fail(
      [...paths.spec, 'hostNetwork'],
      "true: cannot inject: the sidecar would bind the node's addresses and " +
        "ports, and $(POD_IP) would be the node's IP, shared by every pod on it",
    );
  }
  const volumes = spec.get('volumes');
  if (volumes != null && !isSeq(volumes)) return fail([...paths.spec, 'volumes'], 'not a list');
  const metadataPath = paths.metadata;
  for (const path of [metadataPath, [...metadataPath, 'annotations']]) {
    const node = workload.getIn(path);
    if (node != null && !isMap(node)) return fail(path, 'not a map');
  }
  const annotationPath = [...metadataPath, 'annotations', injectedAnnotation];
  const previous = String(workload.getIn(annotationPath) ?? '')
    .split(',')
    .filter((r): r is InjectRole => injectRoles.includes(r as InjectRole));

  // Every name inject would add must be free, or be inject's own from an earlier run.
  const taken = (what: string) => `a ${what} exists and was not added by tunnel-shim inject; rename it`;
  for (const role of o.roles) {
    const index = indexByName(containers, containerName(role));
    if (index >= 0 && !previous.includes(role)) {
      return fail([...paths.spec, 'containers', String(index)], taken(`container named ${containerName(role)}`));
    }
  }
  if (isSeq(volumes) && indexByName(volumes, configMapName) >= 0 && previous.length === 0) {
    return fail([...paths.spec, 'volumes'], taken(`volume named ${configMapName}`));
  }

  let changed = false;
  const put = (seq: YAMLSeq, value: Record<string, unknown>) => {
    const index = indexByName(seq, String(value.name));
    if (index >= 0 && sameValue((seq.items[index] as Node).toJSON(), value)) return;
    changed = true;
    // A sidecar on one line would be unreadable: a flow list (`[{name: app}]`) becomes a block list.
    seq.flow = false;
    if (index >= 0) seq.items[index] = doc.createNode(value);
    else seq.add(doc.createNode(value));
  };
  // A role injected before and not asked for now goes away.
  for (const role of previous.filter((r) => !o.roles.includes(r))) {
    const index = indexByName(containers, containerName(role));
    if (index >= 0) {
      containers.items.splice(index, 1);
      changed = true;
    }
  }
  for (const role of o.roles) put(containers, envoyContainer(role, o, o.roles.length));
  if (isSeq(volumes)) put(volumes, bootstrapVolume());
  else {
    spec.set('volumes', doc.createNode([bootstrapVolume()]));
    changed = true;
  }
  const roles = o.roles.join(',');
  if (workload.getIn(annotationPath) !== roles) {
    // An empty `metadata:` or `annotations:` (null) becomes a map.
    for (const path of [metadataPath, [...metadataPath, 'annotations']]) {
      if (!isMap(workload.getIn(path))) workload.setIn(path, doc.createNode({}));
    }
    workload.setIn(annotationPath, roles);
    changed = true;
  }
  return { changed };
}

function indexByName(seq: YAMLSeq, name: string): number {
  return seq.items.findIndex((item) => isMap(item) && item.get('name') === name);
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

/** Writes an edited document in the style it was read in, as far as the library lets us choose. */
function styleOf(text: string): YAML.ToStringOptions {
  return {
    lineWidth: 0,
    // `containers:` followed by `- name` at the same indentation (kubectl's style) or indented.
    indentSeq: !/^( *)[^\s#-][^\n]*:\n\1- /m.test(text),
    flowCollectionPadding: !/[{[][^\s}\]]/.test(text),
  };
}
