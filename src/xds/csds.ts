// envoy.service.status.v3.ClientStatusDiscoveryService: what every connected node was sent and whether
// it accepted it, per resource, in the standard form that CSDS clients (grpcurl, istioctl-like tools)
// read, for state-of-the-world and delta streams alike (it reads StreamStatus only). Served on the xDS
// port beside ADS.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { lookupType, TypeUrl } from '../envoy/protos.js';
import { byNodeId, type ResourceStatus, type StreamStatus } from './stream-status.js';
import { errorMessage } from '../errors.js';

// A decoded request as protobufjs gives it: its shape is the proto's, checked where it is read.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Decoded = any;

type ConfigStatus = 'SYNCED' | 'STALE' | 'NOT_SENT' | 'ERROR';
type ClientResourceStatus = 'ACKED' | 'REQUESTED' | 'NACKED' | 'DOES_NOT_EXIST';

/** CSDS has no NACKED config status: a rejected resource is ERROR with client status NACKED. */
const configStatusOf: Record<ResourceStatus['status'], ConfigStatus> = {
  SYNCED: 'SYNCED',
  STALE: 'STALE',
  NOT_SENT: 'NOT_SENT',
  NACKED: 'ERROR',
};

function clientStatusOf(r: ResourceStatus): ClientResourceStatus {
  if (r.status === 'SYNCED') return 'ACKED';
  if (r.status === 'NACKED') return 'NACKED';
  return r.missing ? 'DOES_NOT_EXIST' : 'REQUESTED';
}

function timestamp(date: Date) {
  const ms = date.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

interface StringMatcher {
  exact?: string;
  prefix?: string;
  suffix?: string;
  contains?: string;
  safe_regex?: { regex?: string };
  ignore_case?: boolean;
  match_pattern?: string;
}

interface NodeMatcher {
  node_id?: StringMatcher;
  node_metadatas?: unknown[];
}

export interface ClientStatusRequest {
  node_matchers?: NodeMatcher[];
  exclude_resource_contents?: boolean;
}

export class CsdsRequestError extends Error {}

/** Envoy's StringMatcher semantics (one pattern, optional ignore_case); throws on what it cannot apply. */
function compileStringMatcher(m: StringMatcher, where: string): (value: string) => boolean {
  const fold = (s: string) => (m.ignore_case ? s.toLowerCase() : s);
  switch (m.match_pattern) {
    case 'exact':
      return (v) => fold(v) === fold(m.exact ?? '');
    case 'prefix':
      return (v) => fold(v).startsWith(fold(m.prefix ?? ''));
    case 'suffix':
      return (v) => fold(v).endsWith(fold(m.suffix ?? ''));
    case 'contains':
      return (v) => fold(v).includes(fold(m.contains ?? ''));
    case 'safe_regex': {
      let re: RegExp;
      try {
        // RE2 patterns match the whole string in Envoy.
        re = new RegExp(`^(?:${m.safe_regex?.regex ?? ''})$`, m.ignore_case ? 'i' : '');
      } catch (err) {
        throw new CsdsRequestError(`${where}.safe_regex.regex: ${errorMessage(err)}`);
      }
      return (v) => re.test(v);
    }
    default:
      throw new CsdsRequestError(`${where}: needs one of exact, prefix, suffix, contains, safe_regex`);
  }
}

/** Node matchers are ORed; an empty list selects every node. Bad matchers are refused even with no nodes. */
export function selectStreams(streams: Iterable<StreamStatus>, matchers: NodeMatcher[]): StreamStatus[] {
  const tests = matchers.map((m, i) => {
    if ((m.node_metadatas ?? []).length > 0)
      throw new CsdsRequestError(`node_matchers[${i}].node_metadatas: not supported; match on node_id`);
    return m.node_id ? compileStringMatcher(m.node_id, `node_matchers[${i}].node_id`) : () => true;
  });
  const all = [...streams].sort(byNodeId);
  if (tests.length === 0) return all;
  return all.filter((s) => tests.some((test) => test(s.node.id)));
}

function anyOf(encoded: Uint8Array) {
  return lookupType('google.protobuf.Any').decode(encoded);
}

export function clientConfig(stream: StreamStatus, excludeContents: boolean) {
  const generic_xds_configs = stream.resources().map((r) => {
    const config: Record<string, unknown> = {
      type_url: TypeUrl[r.kind],
      name: r.name,
      version_info: r.version ?? '',
      config_status: configStatusOf[r.status],
      client_status: clientStatusOf(r),
    };
    if (r.lastUpdated) config.last_updated = timestamp(r.lastUpdated);
    // A Secret's contents (a private key) never leave through CSDS: its name, version and status do.
    if (r.resource && !excludeContents && r.kind !== 'secret') config.xds_config = anyOf(r.resource.any);
    if (r.nack) {
      config.error_state = {
        details: r.nack.message,
        version_info: r.nack.version,
        last_update_attempt: timestamp(new Date(r.nack.at)),
        ...(r.resource && !excludeContents ? { failed_configuration: anyOf(r.resource.any) } : {}),
      };
    }
    return config;
  });
  return { node: stream.node.message, generic_xds_configs };
}

export function clientStatus(streams: Iterable<StreamStatus>, request: ClientStatusRequest) {
  return {
    config: selectStreams(streams, request.node_matchers ?? []).map((s) =>
      clientConfig(s, request.exclude_resource_contents === true),
    ),
  };
}

function codec(typeName: string) {
  const type = lookupType(typeName);
  return {
    serialize: (message: object): Buffer =>
      Buffer.from(type.encode(type.fromObject(message as Record<string, unknown>)).finish()),
    // oneofs: the name of the set member (match_pattern) tells a matcher's kind.
    deserialize: (bytes: Buffer): Decoded =>
      type.toObject(type.decode(bytes), { oneofs: true, defaults: false, enums: String }),
  };
}

export function csdsServiceDefinition(): grpc.ServiceDefinition {
  const request = codec('envoy.service.status.v3.ClientStatusRequest');
  const response = codec('envoy.service.status.v3.ClientStatusResponse');
  const base = {
    requestSerialize: request.serialize,
    requestDeserialize: request.deserialize,
    responseSerialize: response.serialize,
    responseDeserialize: response.deserialize,
  };
  return {
    StreamClientStatus: {
      path: '/envoy.service.status.v3.ClientStatusDiscoveryService/StreamClientStatus',
      requestStream: true,
      responseStream: true,
      originalName: 'streamClientStatus',
      ...base,
    },
    FetchClientStatus: {
      path: '/envoy.service.status.v3.ClientStatusDiscoveryService/FetchClientStatus',
      requestStream: false,
      responseStream: false,
      originalName: 'fetchClientStatus',
      ...base,
    },
  } as grpc.ServiceDefinition;
}

function failure(err: unknown): Partial<grpc.StatusObject> {
  const invalid = err instanceof CsdsRequestError;
  return { code: invalid ? grpc.status.INVALID_ARGUMENT : grpc.status.INTERNAL, details: errorMessage(err) };
}

/** Handlers over the server's live streams: each request is answered with the state at that moment. */
export function csdsHandlers(
  streams: () => Iterable<StreamStatus>,
  logger: Logger,
  track: (call: grpc.ServerDuplexStream<unknown, unknown>) => void,
): grpc.UntypedServiceImplementation {
  return {
    FetchClientStatus: (
      call: grpc.ServerUnaryCall<ClientStatusRequest, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) => {
      try {
        callback(null, clientStatus(streams(), call.request));
      } catch (err) {
        logger.debug({ err: errorMessage(err) }, 'CSDS request refused');
        callback(failure(err));
      }
    },
    StreamClientStatus: (call: grpc.ServerDuplexStream<ClientStatusRequest, unknown>) => {
      track(call);
      call.on('data', (request: ClientStatusRequest) => {
        try {
          call.write(clientStatus(streams(), request));
        } catch (err) {
          logger.debug({ err: errorMessage(err) }, 'CSDS request refused');
          call.emit('error', Object.assign(new Error(errorMessage(err)), failure(err)));
        }
      });
      call.on('end', () => call.end());
      call.on('error', () => {});
    },
  };
}
