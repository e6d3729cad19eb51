// Who is at the other end of an xDS stream: the SPIFFE ID in its client certificate (the TLS layer already
// checked the certificate against serve --xds-client-ca), and which node it may therefore be.
import * as grpc from '@grpc/grpc-js';
import { NodeMetadata } from '../envoy/node-view.js';
import { structToJson, type NodeIdentity } from './node.js';

/** The owner of a Pod, as the pipeline side knows it (the xds layer does not read the model). */
export interface PodOwner {
  namespace: string;
  name: string;
  serviceAccount: string;
}

/** Asked when a node names a Pod (its id) or a Pod IP (its listen address). */
export interface PodOwners {
  byName(namespace: string, name: string): PodOwner | undefined;
  /** Every Pod with this IP (host-network Pods share their node's). */
  byIp(ip: string): readonly PodOwner[];
}

export interface PeerAuthOptions {
  /** `serve --trust-domain`: a certificate's SPIFFE ID must be in it. */
  trustDomain: string;
  pods?: PodOwners;
  /** `serve --csds-identities`: the SPIFFE IDs that may read every node's status over CSDS. */
  csdsIdentities?: readonly string[];
}

export interface SpiffeIdentity {
  id: string;
  namespace: string;
  serviceAccount: string;
}

export class PermissionDeniedError extends Error {}

type AnyCall = Pick<grpc.ServerUnaryCall<unknown, unknown>, 'getAuthContext'>;

// SPIFFE path segments are letters, digits, dot, dash and underscore; Istio's form names namespace and account.
const istioForm = /^spiffe:\/\/([A-Za-z0-9._-]+)\/ns\/([A-Za-z0-9._-]+)\/sa\/([A-Za-z0-9._-]+)$/;

/** A client's text in a message: quoted, escaped, and short (a status message is an HTTP/2 header). */
function quote(text: string): string {
  return JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}...` : text);
}

/**
 * Node writes SANs as `DNS:a, URI:b` and quotes (as JSON) a value with a separator or quote in it, so
 * `URI:"x, URI:y"` is one name; a text that does not parse yields what parsed before it.
 */
function subjectAltNames(text: string): { type: string; value: string }[] {
  const out: { type: string; value: string }[] = [];
  const entry = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/y;
  for (let m = entry.exec(text); m && m[0] !== ''; m = entry.exec(text)) {
    let value = m[2]!;
    try {
      if (value.startsWith('"')) value = JSON.parse(value) as string;
    } catch {
      break;
    }
    out.push({ type: m[1]!, value });
  }
  return out;
}

/** The identity proven by the stream's client certificate; throws PermissionDeniedError saying why not. */
export function peerIdentity(call: AnyCall, trustDomain: string): SpiffeIdentity {
  const cert = call.getAuthContext().sslPeerCertificate;
  if (!cert) throw new PermissionDeniedError('no client certificate (this xDS port requires one)');
  const uris = subjectAltNames(cert.subjectaltname ?? '')
    .filter((san) => san.type === 'URI')
    .map((san) => san.value);
  const serial = cert.serialNumber;
  const form = `spiffe://${trustDomain}/ns/NS/sa/SA`;
  if (uris.length !== 1)
    throw new PermissionDeniedError(
      `client certificate ${serial} has ${uris.length} URI SANs; exactly one SPIFFE ID (${form}) is required`,
    );
  const m = istioForm.exec(uris[0]!);
  if (!m || m[1] !== trustDomain)
    throw new PermissionDeniedError(
      `client certificate ${serial}: URI SAN ${quote(uris[0]!)} is not a SPIFFE ID ${form} (serve --trust-domain)`,
    );
  return { id: m[0], namespace: m[2]!, serviceAccount: m[3]! };
}

/**
 * The node as its certificate entitles it to be, with the certificate's identity in its view; throws
 * PermissionDeniedError naming what did not match. The rule (README, "xDS over mutual TLS"):
 * - a claimed identity (node metadata `tunnel-shim.io/identity`, SPIFFE ID or ns/sa) equals the certificate's;
 * - the node id is `NAME.NAMESPACE` (optionally `/SUFFIX`) in the certificate's namespace, and a Pod of
 *   that name, when the shim knows it, runs as the certificate's service account;
 * - a listen address that is a Pod's IP belongs to a Pod of the certificate's namespace and service account.
 */
export function bindNode(call: AnyCall, node: NodeIdentity, options: PeerAuthOptions): NodeIdentity {
  const peer = peerIdentity(call, options.trustDomain);
  const deny = (what: string) => new PermissionDeniedError(`node ${quote(node.id)}: ${what}`);
  const metadata = structToJson((node.message as { metadata?: Parameters<typeof structToJson>[0] }).metadata);
  const claim = metadata[NodeMetadata.identity];
  if (claim !== undefined && claim !== peer.id && claim !== `${peer.namespace}/${peer.serviceAccount}`)
    throw deny(`claims identity ${quote(String(claim))} but its client certificate is ${peer.id}`);

  const base = node.id.split('/')[0]!;
  const dot = base.lastIndexOf('.');
  const [name, namespace] = [base.slice(0, dot), base.slice(dot + 1)];
  if (dot <= 0 || namespace !== peer.namespace)
    throw deny(`a node of ${peer.id} must be named NAME.${peer.namespace} (optionally /SUFFIX)`);
  const pod = options.pods?.byName(namespace, name);
  if (pod && pod.serviceAccount !== peer.serviceAccount)
    throw deny(`Pod ${namespace}/${name} runs as service account ${pod.serviceAccount}, the certificate is ${peer.id}`);

  const address = node.view.listenAddress;
  const owners = address ? (options.pods?.byIp(address) ?? []) : [];
  const mine = (o: PodOwner) => o.namespace === peer.namespace && o.serviceAccount === peer.serviceAccount;
  if (owners.length > 0 && !owners.some(mine)) {
    const owner = owners[0]!;
    throw deny(
      `listen address ${address} is Pod ${owner.namespace}/${owner.name}'s ` +
        `(service account ${owner.serviceAccount}), ` +
        `the certificate is ${peer.id}`,
    );
  }
  return { ...node, view: { ...node.view, identity: peer.id } };
}

/** CSDS shows every node's configuration: only to the identities `serve --csds-identities` lists. */
export function authorizeCsds(call: AnyCall, options: PeerAuthOptions): void {
  const peer = peerIdentity(call, options.trustDomain);
  if (!options.csdsIdentities?.includes(peer.id))
    throw new PermissionDeniedError(
      `CSDS: ${peer.id} may not read node status (serve --csds-identities lists who may)`,
    );
}

/** The CSDS handlers, each refusing a caller authorizeCsds refuses with PERMISSION_DENIED. */
export function guardCsds(
  handlers: grpc.UntypedServiceImplementation,
  options: PeerAuthOptions,
  onDenied: (message: string) => void,
): grpc.UntypedServiceImplementation {
  const guarded: grpc.UntypedServiceImplementation = {};
  for (const [method, handler] of Object.entries(handlers)) {
    guarded[method] = ((call: grpc.ServerDuplexStream<unknown, unknown>, callback?: grpc.sendUnaryData<unknown>) => {
      try {
        authorizeCsds(call, options);
      } catch (err) {
        if (!(err instanceof PermissionDeniedError)) throw err;
        onDenied(err.message);
        const status = { code: grpc.status.PERMISSION_DENIED, details: err.message };
        if (callback) return callback(status);
        return void call.emit('error', Object.assign(new Error(err.message), status));
      }
      (handler as (c: unknown, cb?: unknown) => void)(call, callback);
    }) as grpc.UntypedHandleCall;
  }
  return guarded;
}
