// Multi-document YAML as users write it, line by line, for tests of the file source: Services in several
// shapes (block scalars holding `---`-like lines, flow, comments, anchors) and their EndpointSlices.

/** A document as its lines. */
export type Doc = string[];

/** A Service, in a few shapes: block scalars (holding `---`-like lines), flow, quoted, anchors, comments. */
export function serviceDoc(name: string, shape: number, port = 80): Doc {
  const head = ['apiVersion: v1', 'kind: Service', 'metadata:', `  name: ${name}`, '  namespace: default'];
  const spec = ['spec:', '  clusterIP: 10.96.0.1', '  ports:', `  - name: tcp`, `    port: ${port}`];
  switch (shape % 5) {
    case 0:
      return [...head, '  annotations:', "    tunnel-shim.io/tunnel: 'h2'", ...spec];
    case 1:
      return [...head, '  annotations:', '    note: |', '      first', '      ---', '      last', ...spec];
    case 2:
      return [...head, '  labels: {app: x, tier: "a b", on: yes}', '# a comment', ...spec];
    case 3:
      return [...head, '  annotations:', '    note: >-', '      folded', '      ...', '      text', ...spec];
    default:
      return [...head, '  labels: &l', '    app: y', '  annotations: *l', ...spec];
  }
}

export function sliceDoc(name: string, ip: string): Doc {
  return [
    'apiVersion: discovery.k8s.io/v1',
    'kind: EndpointSlice',
    'metadata:',
    `  name: ${name}-0`,
    '  namespace: default',
    '  labels:',
    `    kubernetes.io/service-name: ${name}`,
    'addressType: IPv4',
    'ports:',
    '- {name: tcp, port: 8080}',
    'endpoints:',
    `- addresses: ["${ip}"]`,
    '  conditions:',
    '    ready: true',
  ];
}

/** The documents as one file: `separator` before each but the first, `\r\n` line ends if `crlf`. */
export function joinDocs(docs: Doc[], separator = '---', crlf = false): string {
  const text = docs.map((d) => d.map((l) => `${l}\n`).join('')).join(`${separator}\n`);
  return crlf ? text.replace(/\n/g, '\r\n') : text;
}

/** `count` Services, each with its EndpointSlice: 2 x `count` documents. */
export function servicesFile(count: number, name = (i: number) => `svc-${i}`): string {
  const docs: Doc[] = [];
  for (let i = 0; i < count; i++)
    docs.push(serviceDoc(name(i), i, 1000 + i), sliceDoc(name(i), `10.1.${i >> 8}.${i & 255}`));
  return joinDocs(docs);
}
