// Reads who a node is from its bootstrap node (id, cluster, metadata).
import { isIP } from 'node:net';
import { NodeMetadata, roles, type NodeView, type Role } from '../envoy/node-view.js';
import { IdentityError, resolveIdentity, type IdentityOptions } from './identity.js';

export interface NodeIdentity {
  id: string;
  cluster: string;
  view: NodeView;
  /** The node exactly as the client sent it (envoy.config.core.v3.Node, decoded), echoed back by CSDS. */
  message: object;
}

// protobufjs' built-in google.protobuf.Value uses camelCase field names even with keepCase.
type StructValue = null | {
  stringValue?: string;
  numberValue?: number;
  boolValue?: boolean;
  structValue?: { fields?: Record<string, StructValue> };
};

export function structToJson(
  struct: { fields?: Record<string, StructValue> } | undefined | null,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(struct?.fields ?? {})) {
    // A map entry without a value decodes as null (found by fuzzing: it was an INTERNAL error).
    if (!value) continue;
    if (value.stringValue !== undefined) out[key] = value.stringValue;
    else if (value.numberValue !== undefined) out[key] = value.numberValue;
    else if (value.boolValue !== undefined) out[key] = value.boolValue;
    else if (value.structValue !== undefined) out[key] = structToJson(value.structValue);
  }
  return out;
}

export class NodeError extends Error {}

/** What the server says about every node: how identities are decided, and `serve --sds`. */
export interface NodeOptions extends IdentityOptions {
  sds?: string;
  sdsNames?: [string, string];
}

/** Parses the node of a stream's first request; throws NodeError naming the bad field. */
export function parseNode(
  node: { id?: string; cluster?: string; metadata?: { fields?: Record<string, StructValue> } } | null | undefined,
  identity?: NodeOptions,
): NodeIdentity {
  if (!node?.id) throw new NodeError('node.id is required in the first request of a stream');
  const metadata = structToJson(node.metadata);
  const role = metadata[NodeMetadata.role];
  if (typeof role !== 'string' || !roles.includes(role as Role)) {
    throw new NodeError(
      `node ${node.id}: node.metadata["${NodeMetadata.role}"] must be one of ${roles.join(', ')} (got ` +
        `${JSON.stringify(role)})`,
    );
  }
  const view: NodeView = { role: role as Role };
  const listen = metadata[NodeMetadata.listenAddress];
  if (listen !== undefined && listen !== '') {
    if (typeof listen !== 'string' || isIP(listen) === 0) {
      throw new NodeError(
        `node ${node.id}: node.metadata["${NodeMetadata.listenAddress}"] must be an IP address (got ` +
          `${JSON.stringify(listen)})`,
      );
    }
    view.listenAddress = listen;
  }
  const accessLog = metadata[NodeMetadata.accessLog];
  if (typeof accessLog === 'string' && accessLog !== '') view.accessLog = accessLog;
  const relayBackend = metadata[NodeMetadata.relayHttpBackend];
  if (relayBackend !== undefined && relayBackend !== '') {
    if (typeof relayBackend !== 'string' || !isHostPort(relayBackend)) {
      throw new NodeError(
        `node ${node.id}: node.metadata["${NodeMetadata.relayHttpBackend}"] must be IP:PORT (got ` +
          `${JSON.stringify(relayBackend)})`,
      );
    }
    view.relayHttpBackend = relayBackend;
  }
  try {
    const id = resolveIdentity(metadata[NodeMetadata.identity], identity);
    if (id) view.identity = id;
  } catch (err) {
    if (!(err instanceof IdentityError)) throw err;
    throw new NodeError(`node ${node.id}: node.metadata["${NodeMetadata.identity}"] ${err.message}`);
  }
  const sds = metadata[NodeMetadata.sds] ?? identity?.sds;
  if (sds !== undefined && sds !== '') {
    if (typeof sds !== 'string' || !/^unix:\/\S+$/.test(sds))
      throw new NodeError(
        `node ${node.id}: node.metadata["${NodeMetadata.sds}"] must be unix:/PATH (got ${JSON.stringify(sds)})`,
      );
    view.sds = sds;
    if (identity?.sdsNames) view.sdsNames = identity.sdsNames;
  }
  return { id: node.id, cluster: node.cluster ?? '', view, message: node };
}

/** `ip:port` or `[ipv6]:port`. */
export function isHostPort(text: string): boolean {
  const i = text.lastIndexOf(':');
  const port = Number(text.slice(i + 1));
  return (
    i > 0 &&
    isIP(text.slice(0, i).replace(/^\[|\]$/g, '')) !== 0 &&
    Number.isInteger(port) &&
    port >= 1 &&
    port <= 65535
  );
}
