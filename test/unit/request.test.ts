import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { lookupType } from '../../src/envoy/protos.js';
import { decodeSotwRequest as decode, SubscriptionTable } from '../../src/xds/request.js';

const table = new SubscriptionTable();
const decodeSotwRequest = (bytes: Uint8Array) => decode(bytes, table);
const subscriptionOf = (raw: Uint8Array) => table.of(raw);

const DiscoveryRequest = lookupType('envoy.service.discovery.v3.DiscoveryRequest');
const encode = (r: Record<string, unknown>) => DiscoveryRequest.encode(DiscoveryRequest.fromObject(r)).finish();
const EDS = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';

describe('SotW request decoding: names kept as bytes, subscriptions shared', () => {
  it('decodes every field the server uses and leaves resource_names as their raw bytes', () => {
    const r = decodeSotwRequest(
      encode({
        version_info: 'v1',
        node: { id: 'n1' },
        resource_names: ['a', 'b'],
        type_url: EDS,
        response_nonce: 'x-1',
        error_detail: { code: 3, message: 'bad' },
      }),
    );
    expect(r).toMatchObject({
      version_info: 'v1',
      type_url: EDS,
      response_nonce: 'x-1',
      error_detail: { code: 3, message: 'bad' },
    });
    expect((r.node as { id: string }).id).toBe('n1');
    expect(subscriptionOf(r.namesRaw!).list).toEqual(['a', 'b']);
  });

  it('equal name lists give the same shared subscription; a different list a different one', () => {
    const one = subscriptionOf(decodeSotwRequest(encode({ resource_names: ['c1', 'c2'], type_url: EDS })).namesRaw!);
    const again = subscriptionOf(
      decodeSotwRequest(encode({ resource_names: ['c1', 'c2'], type_url: EDS, response_nonce: 'n' })).namesRaw!,
    );
    const other = subscriptionOf(decodeSotwRequest(encode({ resource_names: ['c1', 'c3'], type_url: EDS })).namesRaw!);
    expect(again).toBe(one);
    expect(other).not.toBe(one);
    expect([...other.set]).toEqual(['c1', 'c3']);
  });

  it('recognises a known subscription by its bytes, but not one that merely starts like it', () => {
    const known = subscriptionOf(decodeSotwRequest(encode({ resource_names: ['p1', 'p2'], type_url: EDS })).namesRaw!);
    const ack = decodeSotwRequest(
      encode({ version_info: 'v', resource_names: ['p1', 'p2'], type_url: EDS, response_nonce: 'n-2' }),
    );
    expect(ack.namesRaw).toBe(known.raw);
    expect(ack).toMatchObject({ version_info: 'v', type_url: EDS, response_nonce: 'n-2' });
    const longer = decodeSotwRequest(encode({ resource_names: ['p1', 'p2', 'p3'], type_url: EDS }));
    expect(subscriptionOf(longer.namesRaw!).list).toEqual(['p1', 'p2', 'p3']);
    const shorter = decodeSotwRequest(encode({ resource_names: ['p1'], type_url: EDS }));
    expect(subscriptionOf(shorter.namesRaw!).list).toEqual(['p1']);
  });

  it('no names and * are wildcard requests; * is not a name', () => {
    expect(subscriptionOf(decodeSotwRequest(encode({ type_url: EDS })).namesRaw!)).toMatchObject({
      list: [],
      wildcardish: true,
    });
    const star = subscriptionOf(decodeSotwRequest(encode({ resource_names: ['*', 'a'] })).namesRaw!);
    expect(star.wildcardish).toBe(true);
    expect([...star.set]).toEqual(['a']);
  });

  it('gathers names interleaved with other fields (legal protobuf, though Envoy never writes it)', () => {
    const namesId = DiscoveryRequest.fields.resource_names!.id;
    const nonceId = DiscoveryRequest.fields.response_nonce!.id;
    const w = protobuf.Writer.create();
    w.uint32((namesId << 3) | 2).string('a');
    w.uint32((nonceId << 3) | 2).string('n-1');
    w.uint32((namesId << 3) | 2).string('b');
    const r = decodeSotwRequest(w.finish());
    expect(r.response_nonce).toBe('n-1');
    expect(subscriptionOf(r.namesRaw!).list).toEqual(['a', 'b']);
  });

  it('gathers a known list followed, after another field, by more names', () => {
    const known = subscriptionOf(decodeSotwRequest(encode({ resource_names: ['k1', 'k2'] })).namesRaw!);
    const namesId = DiscoveryRequest.fields.resource_names!.id;
    const nonceId = DiscoveryRequest.fields.response_nonce!.id;
    const bytes = Buffer.concat([
      known.raw,
      protobuf.Writer.create()
        .uint32((nonceId << 3) | 2)
        .string('n')
        .uint32((namesId << 3) | 2)
        .string('k3')
        .finish(),
    ]);
    expect(subscriptionOf(decodeSotwRequest(bytes).namesRaw!).list).toEqual(['k1', 'k2', 'k3']);
  });

  it('rejects bytes that are not a DiscoveryRequest instead of guessing', () => {
    expect(() => decodeSotwRequest(Uint8Array.from([0x1a, 0x05, 0x61]))).toThrow();
  });
});
