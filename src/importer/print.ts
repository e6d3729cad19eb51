// The import result as YAML a user applies or drops into the file source: every Service and TCPRoute
// with comment lines above it for what has no equivalent, and why.
import YAML from 'yaml';
import type { ImportResult, RouteDraft, ServiceDraft } from './envoyfilter.js';

function comments(lines: string[]): string {
  return lines.map((l) => `# ${l.replace(/\n/g, ' ')}\n`).join('');
}

function annotationsOf(s: ServiceDraft): Record<string, string> {
  const out: Record<string, string> = {};
  // The annotation that makes a Service a tunnel goes first; the rest sorted, so output is stable.
  if (s.tunneled) out['tunnel-shim.io/tunnel'] = s.annotations['tunnel-shim.io/tunnel'] ?? 'h2';
  for (const key of Object.keys(s.annotations).sort())
    if (key !== 'tunnel-shim.io/tunnel' || s.tunneled) out[key] = s.annotations[key]!;
  return out;
}

function serviceDocument(s: ServiceDraft) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: s.name,
      namespace: s.namespace,
      ...(Object.keys(annotationsOf(s)).length > 0 ? { annotations: annotationsOf(s) } : {}),
    },
    spec: { ports: [{ name: `tcp-${s.port}`, port: s.port }] },
  };
}

function routeDocument(r: RouteDraft) {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1alpha2',
    kind: 'TCPRoute',
    metadata: { name: r.name, namespace: r.namespace },
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: r.parent.name, port: r.parent.port }],
      rules: [
        {
          backendRefs: r.backends.map((b) => ({
            name: b.name,
            ...(b.namespace !== r.namespace ? { namespace: b.namespace } : {}),
            port: b.port,
            weight: b.weight,
          })),
        },
      ],
    },
  };
}

export function printImport(result: ImportResult): string {
  const parts: string[] = [];
  for (const s of result.services) {
    const head = [
      `Service ${s.namespace}/${s.name} from ${s.from.join(', ')}. Keep your Service's selector and clusterIP; ` +
        `add these annotations and this port.`,
    ];
    parts.push(
      comments([...head, ...[...new Set(s.notes)].map((n) => `- ${n}`)]) +
        YAML.stringify(serviceDocument(s), { lineWidth: 0 }),
    );
  }
  for (const r of result.routes) {
    parts.push(
      comments([`TCPRoute from ${r.from.join(', ')} (weighted_clusters)`, ...r.notes.map((n) => `- ${n}`)]) +
        YAML.stringify(routeDocument(r), { lineWidth: 0 }),
    );
  }
  // What a whole EnvoyFilter did that has no equivalent leads the output, in the first document.
  const preface =
    result.notes.length > 0
      ? comments(['Not converted (no equivalent in tunnel-shim):', ...result.notes.map((n) => `- ${n}`)])
      : '';
  return preface + parts.join('---\n');
}
