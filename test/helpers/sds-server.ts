// A plain SDS server (envoy.service.secret.v3.SecretDiscoveryService) on a Unix socket, standing in for
// a SPIRE agent: it serves one identity's certificate as `default` and its bundle as `ROOTCA`.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { encodeMessage } from '../../src/envoy/encode.js';
import { lookupType, TypeUrl } from '../../src/envoy/protos.js';

export interface SdsServer {
  socket: string;
  /** Requests received, by resource name. */
  requested: Set<string>;
  stop(): Promise<void>;
}

export async function startSdsServer(identity: {
  certPem: string;
  keyPem: string;
  bundle: string;
}): Promise<SdsServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sds-'));
  const socket = path.join(dir, 'agent.sock');
  const requestType = lookupType('envoy.service.discovery.v3.DiscoveryRequest');
  const responseType = lookupType('envoy.service.discovery.v3.DiscoveryResponse');
  const secrets: Record<string, Record<string, unknown>> = {
    default: {
      name: 'default',
      tls_certificate: {
        certificate_chain: { inline_string: identity.certPem },
        private_key: { inline_string: identity.keyPem },
      },
    },
    ROOTCA: { name: 'ROOTCA', validation_context: { trusted_ca: { inline_string: identity.bundle } } },
  };
  const requested = new Set<string>();
  const server = new grpc.Server();
  const definition = {
    StreamSecrets: {
      path: '/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets',
      requestStream: true,
      responseStream: true,
      requestSerialize: (m: object) => Buffer.from(requestType.encode(requestType.fromObject(m)).finish()),
      requestDeserialize: (b: Buffer) => requestType.toObject(requestType.decode(b)) as Record<string, unknown>,
      responseSerialize: (m: Record<string, unknown>) =>
        Buffer.from(responseType.encode(responseType.fromObject(m)).finish()),
      responseDeserialize: (b: Buffer) => responseType.decode(b),
    },
  } as unknown as grpc.ServiceDefinition;
  let nonce = 0;
  server.addService(definition, {
    StreamSecrets: (call: grpc.ServerDuplexStream<Record<string, unknown>, Record<string, unknown>>) => {
      let sentFor = '';
      call.on('data', (request: { resource_names?: string[] }) => {
        const names = (request.resource_names ?? []).filter((n) => n in secrets).sort();
        for (const n of request.resource_names ?? []) requested.add(n);
        // Answer each new set of names once; an ACK of what was sent gets no answer.
        if (names.join(',') === sentFor) return;
        sentFor = names.join(',');
        call.write({
          version_info: '1',
          type_url: TypeUrl.secret,
          nonce: String(++nonce),
          resources: names.map((n) => ({
            type_url: TypeUrl.secret,
            value: encodeMessage(TypeUrl.secret, secrets[n]!),
          })),
        });
      });
      call.on('error', () => {});
    },
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix:${socket}`, grpc.ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    ),
  );
  return {
    socket,
    requested,
    stop: async () => {
      server.forceShutdown();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
