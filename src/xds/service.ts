// gRPC service definitions built from the loaded protos. The server writes responses as pre-encoded
// bytes, so its response serializer passes a Buffer through untouched, and reads SotW requests with
// their resource_names left as bytes (request.ts); clients (tests, benchmarks) encode requests from
// objects and decode responses.
import type * as grpc from '@grpc/grpc-js';
import { lookupType } from '../envoy/protos.js';
import { decodeSotwRequest, tolerant, type SubscriptionTable } from './request.js';

// A decoded message as protobufjs gives it: its shape is the proto's, checked where it is read.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Decoded = any;

function codec(typeName: string) {
  const type = lookupType(typeName);
  return {
    serialize: (message: object): Buffer =>
      Buffer.from(type.encode(type.fromObject(message as Record<string, unknown>)).finish()),
    deserialize: (bytes: Buffer): Decoded => type.decode(bytes),
  };
}

const passThrough = (bytes: Buffer): Buffer => bytes;

const adsPath = '/envoy.service.discovery.v3.AggregatedDiscoveryService';

function adsDefinition(side: 'server' | 'client', subscriptions?: SubscriptionTable): grpc.ServiceDefinition {
  const method = (name: string, originalName: string, messages: string) => {
    const request = codec(`envoy.service.discovery.v3.${messages}Request`);
    const response = codec(`envoy.service.discovery.v3.${messages}Response`);
    // SotW requests keep resource_names as bytes (request.ts); malformed bytes end only their stream.
    const serverDecode =
      messages === 'Discovery' ? (bytes: Buffer) => decodeSotwRequest(bytes, subscriptions) : request.deserialize;
    return {
      path: `${adsPath}/${name}`,
      requestStream: true,
      responseStream: true,
      requestSerialize: request.serialize,
      requestDeserialize: side === 'server' ? tolerant(`${messages}Request`, serverDecode) : request.deserialize,
      responseSerialize: side === 'server' ? passThrough : response.serialize,
      responseDeserialize: response.deserialize,
      originalName,
    };
  };
  return {
    StreamAggregatedResources: method('StreamAggregatedResources', 'streamAggregatedResources', 'Discovery'),
    DeltaAggregatedResources: method('DeltaAggregatedResources', 'deltaAggregatedResources', 'DeltaDiscovery'),
  } as grpc.ServiceDefinition;
}

/** `subscriptions`: the server's, so ACKs that repeat a held subscription are recognised without decoding. */
export const adsServiceDefinition = (subscriptions: SubscriptionTable) => adsDefinition('server', subscriptions);
export const adsClientDefinition = () => adsDefinition('client');
