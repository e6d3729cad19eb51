// What encode.ts does to keep less memory per encoded resource must not change a byte: the Any written
// in one buffer equals the message encoded and then wrapped, and versions are the digest's first 64 bits.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { contentVersion, encodeAny, encodeMessage } from '../../src/envoy/encode.js';
import { fromEnvoyJson } from '../../src/envoy/json.js';
import { lookupType, messageNameOf, pushOrder, TypeUrl } from '../../src/envoy/protos.js';
import { buildModel } from '../../src/model/build.js';
import { defaultModelOptions } from '../../src/model/tunnel.js';
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
