// gRPC service definitions built from the loaded protos. Responses are written as pre-encoded bytes,
// so the response serializer passes a Buffer through untouched.
import type * as grpc from '@grpc/grpc-js';
import { lookupType } from '../envoy/protos.js';

function codec(typeName: string) {
  const type = lookupType(typeName);
  return {
    serialize: (message: object): Buffer => Buffer.from(type.encode(type.fromObject(message as Record<string, unknown>)).finish()),
    deserialize: (bytes: Buffer): any => type.decode(bytes),
  };
}

const passThrough = (bytes: Buffer): Buffer => bytes;

const adsPath = '/envoy.service.discovery.v3.AggregatedDiscoveryService';

export function adsServiceDefinition(): grpc.ServiceDefinition {
  const request = codec('envoy.service.discovery.v3.DiscoveryRequest');
  const response = codec('envoy.service.discovery.v3.DiscoveryResponse');
  const deltaRequest = codec('envoy.service.discovery.v3.DeltaDiscoveryRequest');
  const deltaResponse = codec('envoy.service.discovery.v3.DeltaDiscoveryResponse');
  return {
    DeltaAggregatedResources: {
      path: `${adsPath}/DeltaAggregatedResources`,
      requestStream: true,
      responseStream: true,
      requestSerialize: deltaRequest.serialize,
      requestDeserialize: deltaRequest.deserialize,
      responseSerialize: passThrough,
      responseDeserialize: deltaResponse.deserialize,
      originalName: 'deltaAggregatedResources',
    },
    StreamAggregatedResources: {
      path: '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
      requestStream: true,
      responseStream: true,
      requestSerialize: request.serialize,
      requestDeserialize: request.deserialize,
      responseSerialize: passThrough,
      responseDeserialize: response.deserialize,
      originalName: 'streamAggregatedResources',
    },
  } as grpc.ServiceDefinition;
}

/** The same service for clients (tests, benchmarks): requests encoded from objects, responses decoded. */
export function adsClientDefinition(): grpc.ServiceDefinition {
  const request = codec('envoy.service.discovery.v3.DiscoveryRequest');
  const response = codec('envoy.service.discovery.v3.DiscoveryResponse');
  const deltaRequest = codec('envoy.service.discovery.v3.DeltaDiscoveryRequest');
  const deltaResponse = codec('envoy.service.discovery.v3.DeltaDiscoveryResponse');
  return {
    DeltaAggregatedResources: {
      path: `${adsPath}/DeltaAggregatedResources`,
      requestStream: true,
      responseStream: true,
      requestSerialize: deltaRequest.serialize,
      requestDeserialize: deltaRequest.deserialize,
      responseSerialize: deltaResponse.serialize,
      responseDeserialize: deltaResponse.deserialize,
    },
    StreamAggregatedResources: {
      path: '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
      requestStream: true,
      responseStream: true,
      requestSerialize: request.serialize,
      requestDeserialize: request.deserialize,
      responseSerialize: response.serialize,
      responseDeserialize: response.deserialize,
    },
  } as grpc.ServiceDefinition;
}
