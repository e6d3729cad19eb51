// The rule that binds an xDS stream's certificate to the node it may be, case by case (the protocol and
// end-to-end tests show it through real TLS), and the flags that turn it on.
import { describe, expect, it } from 'vitest';
import { program } from '../../src/cli/main.js';
import { serveTlsFrom } from '../../src/cli/xds-tls-options.js';
import { parseNode } from '../../src/xds/node.js';
import { bindNode, peerIdentity, type PodOwner, type PodOwners } from '../../src/xds/peer-identity.js';

const web = 'spiffe://cluster.local/ns/shop/sa/web';

function call(subjectaltname?: string) {
  const sslPeerCertificate = subjectaltname === undefined ? undefined : { subjectaltname, serialNumber: '0A' };
  return { getAuthContext: () => ({ sslPeerCertificate }) as never };
}

const owners: PodOwner[] = [
  { namespace: 'shop', name: 'db-0', serviceAccount: 'db' },
  { namespace: 'shop', name: 'web-0', serviceAccount: 'web' },
  // Host-network Pods share their node's IP.
  { namespace: 'kube-system', name: 'agent', serviceAccount: 'agent' },
];
const ips: Record<string, PodOwner[]> = { '10.1.0.5': [owners[0]!], '192.168.0.2': [owners[1]!, owners[2]!] };
const pods: PodOwners = {
  byName: (ns, name) => owners.find((o) => o.namespace === ns && o.name === name),
  byIp: (ip) => ips[ip] ?? [],
};

function node(id: string, metadata: Record<string, string> = {}) {
  const fields = Object.fromEntries(
    Object.entries({ 'tunnel-shim.io/role': 'terminate', ...metadata }).map(([k, v]) => [k, { stringValue: v }]),
  );
  return parseNode({ id, metadata: { fields } });
}

const bind = (san: string | undefined, id: string, metadata?: Record<string, string>) =>
  bindNode(call(san), node(id, metadata), { trustDomain: 'cluster.local', pods });

describe('the identity of a client certificate', () => {
  it.each([
    [undefined, 'no client certificate (this xDS port requires one)'],
    ['DNS:web.shop', 'client certificate 0A has 0 URI SANs; exactly one SPIFFE ID'],
    [`URI:${web}, URI:spiffe://cluster.local/ns/shop/sa/db`, 'client certificate 0A has 2 URI SANs'],
    [
      'URI:"spiffe://cluster.local/ns/shop/sa/web, URI:x"',
      'URI SAN "spiffe://cluster.local/ns/shop/sa/web, URI:x" is not',
    ],
    ['URI:spiffe://cluster.local/web', 'URI SAN "spiffe://cluster.local/web" is not a SPIFFE ID'],
    ['URI:spiffe://example.org/ns/shop/sa/web', 'is not a SPIFFE ID spiffe://cluster.local/ns/NS/sa/SA'],
  ])('refuses %s', (san, message) => {
    expect(() => peerIdentity(call(san), 'cluster.local')).toThrow(message);
  });

  it('reads the one SPIFFE ID beside DNS names', () => {
    expect(peerIdentity(call(`DNS:web.shop, URI:${web}`), 'cluster.local')).toEqual({
      id: web,
      namespace: 'shop',
      serviceAccount: 'web',
    });
  });
});

describe('binding a node to its certificate', () => {
  it.each([
    ['web-0.shop', {}],
    ['web-0.shop/originate', {}],
    ['any-name.with.dots.shop', {}],
    ['web-0.shop', { 'tunnel-shim.io/identity': web }],
    ['web-0.shop', { 'tunnel-shim.io/identity': 'shop/web' }],
    ['web-7.shop', { 'tunnel-shim.io/listen-address': '192.168.0.2' }],
    ['web-7.shop', { 'tunnel-shim.io/listen-address': '10.9.9.9' }],
  ])('serves %s %j with the certificate identity in its view', (id, metadata) => {
    expect(bind(`URI:${web}`, id, metadata).view.identity).toBe(web);
  });

  it.each([
    ['web', {}, 'a node of spiffe://cluster.local/ns/shop/sa/web must be named NAME.shop'],
    ['.shop', {}, 'must be named NAME.shop'],
    ['web-0.payments', {}, 'must be named NAME.shop'],
    ['db-0.shop', {}, 'Pod shop/db-0 runs as service account db, the certificate is'],
    ['web-0.shop', { 'tunnel-shim.io/identity': 'shop/db' }, 'claims identity "shop/db" but its client certificate is'],
    ['web-1.shop', { 'tunnel-shim.io/listen-address': '10.1.0.5' }, "listen address 10.1.0.5 is Pod shop/db-0's"],
  ])('refuses %s %j', (id, metadata, message) => {
    expect(() => bind(`URI:${web}`, id, metadata)).toThrow(message);
  });

  it('quotes and shortens a hostile node id in the message', () => {
    expect(() => bind(`URI:${web}`, `${'x'.repeat(500)}\n.payments`)).toThrow(/^node "x{200}\.\.\.": a node of/);
  });
});

describe('flags', () => {
  it('need each other as TLS needs them', () => {
    const base = { trustDomain: 'cluster.local' };
    expect(serveTlsFrom(base)).toEqual({});
    expect(() => serveTlsFrom({ ...base, xdsTlsCert: 'c' })).toThrow('--xds-tls-cert and --xds-tls-key go together');
    expect(() => serveTlsFrom({ ...base, xdsClientCa: 'ca' })).toThrow('--xds-client-ca needs --xds-tls-cert');
    expect(() => serveTlsFrom({ ...base, xdsTlsCert: 'c', xdsTlsKey: 'k', csdsIdentities: [web] })).toThrow(
      '--csds-identities needs --xds-client-ca',
    );
  });

  it('keep the admin and xDS ports on loopback by default', () => {
    const serve = program().commands.find((c) => c.name() === 'serve')!;
    const defaultOf = (flag: string) => serve.options.find((o) => o.long === flag)?.defaultValue;
    expect(defaultOf('--admin-address')).toBe('127.0.0.1:18080');
    expect(defaultOf('--xds-address')).toBe('127.0.0.1:18000');
  });
});
