// What is done to keep less memory per tunnel and per encoded resource must not change a byte or a
// field: the Any written in one buffer equals the message encoded and then wrapped, versions are the
// digest's first 64 bits, and a tunnel written in one shape has every field a spread would give.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { contentVersion, encodeAny, encodeMessage } from '../../src/envoy/encode.js';
import { fromEnvoyJson } from '../../src/envoy/json.js';
import { lookupType, messageNameOf, pushOrder, TypeUrl } from '../../src/envoy/protos.js';
import { buildModel, completeTunnel } from '../../src/model/build.js';
import { defaultModelOptions, type Tunnel } from '../../src/model/tunnel.js';
import { translate } from '../../src/translate/index.js';
import { objectOf } from '../../src/translate/resources.js';

const objects = [
  {
    object: {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: 'shop', annotations: { 'tunnel-shim.io/tunnel': 'h2' } },
      spec: { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80 }] },
    },
  },
  {
    object: {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'web-1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 8080 }],
      endpoints: [{ addresses: ['10.1.0.1'], conditions: { ready: true } }],
    },
  },
];

describe('encoded resources', () => {
  const model = buildModel(objects, defaultModelOptions);
  const views = [{ role: 'originate' as const }, { role: 'terminate' as const, listenAddress: '10.1.0.1' }];

  it('writes the Any of every translated resource with the same bytes as the message wrapped in an Any', () => {
    const any = lookupType('google.protobuf.Any');
    let count = 0;
    for (const view of views) {
      const { resources } = translate(model, view);
      for (const kind of pushOrder) {
        const typeUrl = TypeUrl[kind];
        for (const resource of resources[kind]) {
          const protoForm = fromEnvoyJson(lookupType(messageNameOf(typeUrl)), objectOf(resource));
          const value = encodeMessage(typeUrl, protoForm);
          const wrapped = any.encode(any.create({ type_url: typeUrl, value })).finish();
          expect(Buffer.from(encodeAny(typeUrl, protoForm)).equals(Buffer.from(wrapped))).toBe(true);
          count++;
        }
      }
    }
    expect(count).toBeGreaterThanOrEqual(6);
  });

  it('writes an empty message as an Any with an empty value, as the wrapped encoding does', () => {
    const any = lookupType('google.protobuf.Any');
    const typeUrl = TypeUrl.cluster;
    const wrapped = any.encode(any.create({ type_url: typeUrl, value: encodeMessage(typeUrl, {}) })).finish();
    expect(Buffer.from(encodeAny(typeUrl, {})).equals(Buffer.from(wrapped))).toBe(true);
  });

  it('versions are the first 16 hex digits of the SHA-256 of the parts', () => {
    const parts = ['a name', '\n', new Uint8Array([1, 2, 3])];
    const hash = createHash('sha256');
    for (const p of parts) hash.update(p);
    expect(contentVersion(...parts)).toBe(hash.digest('hex').slice(0, 16));
    expect(contentVersion()).toBe('e3b0c44298fc1c14');
  });
});

describe('tunnels written in one shape', () => {
  // Required<Tunnel>: a field added to Tunnel fails to compile here until it is listed, and then this
  // test fails until completeTunnel copies it.
  const full: Required<Tunnel> = {
    key: 'shop/web:80',
    service: { kind: 'Service', namespace: 'shop', name: 'web' },
    portName: 'http',
    port: 80,
    clusterIP: '10.96.0.10',
    authority: 'web.shop.svc.cluster.local:80',
    settings: { mode: 'h2', tunnelPort: 15008, placement: 'sidecar' },
    endpoints: [{ address: '10.1.0.1', port: 8080 }],
    origin: { file: 'a.yaml', line: 3 },
    split: [{ tunnelKey: 'shop/web>b:80', weight: 1 }],
    via: { name: 'front', port: 81 },
    servedBy: ['spiffe://cluster.local/ns/shop/sa/web'],
    servedCertified: true,
  };

  it('keeps every field of the tunnel and adds the parts, as a spread would', () => {
    const { split, servedBy, servedCertified, ...rest } = full;
    expect(completeTunnel(full, undefined, undefined, undefined)).toEqual(full);
    expect(completeTunnel(rest, split, servedBy, servedCertified)).toEqual({
      ...rest,
      split,
      servedBy,
      servedCertified,
    });
    const other = [{ tunnelKey: 'x', weight: 2 }];
    expect(completeTunnel(full, other, undefined, undefined)).toEqual({ ...full, split: other });
  });

  it('gives the same model as before for Services with and without mTLS parts', () => {
    const model = buildModel(objects, defaultModelOptions);
    expect(model.tunnels).toHaveLength(1);
    expect(model.tunnels[0]).toMatchObject({ key: 'shop/web:80', port: 80, endpoints: [{ address: '10.1.0.1' }] });
    expect(model.tunnels[0]!.servedBy).toEqual(['spiffe://cluster.local/ns/shop/sa/*']);
  });
});
