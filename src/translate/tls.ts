// Mutual TLS on tunnels. Certificates come over SDS under the same names for every node (the node's
// own certificate, and the roots it trusts), from the shim over ADS or from an external SDS server (a
// SPIRE agent, by its names): clusters and listeners are the same bytes whatever the identity, and
// only the Secrets differ per node.
import type { ResourceObject } from '../envoy/encode.js';
import { mtlsModeOf, spiffeMatcher } from '../model/mtls.js';
import type { Model, Tunnel } from '../model/tunnel.js';
import { adsConfigSource, typeOf } from './envoy-fields.js';
import type { NodeView } from './view.js';

/** What the shim calls the node's certificate and trust bundle when it serves them itself. */
export const shimSecretNames = { cert: 'tunnel-shim/identity', bundle: 'tunnel-shim/trust-bundle' } as const;
/** SPIRE's default names, used with an external SDS server unless `serve --sds-names` says otherwise. */
export const spireSecretNames = { cert: 'default', bundle: 'ROOTCA' } as const;
/** The static cluster `bootstrap --sds` writes for the external SDS server's socket. */
export const externalSdsCluster = 'tunnel-shim-sds';

export const tlsTypes = {
  upstream: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  downstream: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
} as const;

/** A node can speak mTLS when it has certificates: an identity the shim serves, or an external SDS server. */
export function hasCertificates(view: NodeView): boolean {
  return view.identity !== undefined || view.sds !== undefined;
}

/**
 * Auto mode's client side: whether the node surely has a certificate, one the shim holds for its
 * identity or one from its external SDS server (assumed there). A claimed identity alone is not enough.
 */
export function nodeCertified(model: Model, view: NodeView): boolean {
  if (view.sds !== undefined) return true;
  return view.identity !== undefined && model.tls?.identities.has(view.identity) === true;
}

/** Part of a memo piece: what of the view (and, for originators, of `nodeCertified`) the TLS config depends on. */
export function tlsPiece(view: NodeView, certified = false): string {
  const cert = certified ? '|cert' : '';
  if (view.sds) return `|sds:${(view.sdsNames ?? []).join(',')}${cert}`;
  return view.identity !== undefined ? `|tls${cert}` : '';
}

function secretNames(view: NodeView) {
  if (!view.sds) return shimSecretNames;
  return view.sdsNames ? { cert: view.sdsNames[0], bundle: view.sdsNames[1] } : spireSecretNames;
}

function sdsConfig(view: NodeView): ResourceObject {
  if (!view.sds) return adsConfigSource;
  return {
    api_config_source: {
      api_type: 'GRPC',
      transport_api_version: 'V3',
      grpc_services: [{ envoy_grpc: { cluster_name: externalSdsCluster } }],
    },
    resource_api_version: 'V3',
  };
}

function commonContext(view: NodeView, alpn: string[], validation: ResourceObject = {}): ResourceObject {
  const names = secretNames(view);
  const source = sdsConfig(view);
  return {
    tls_certificate_sds_secret_configs: [{ name: names.cert, sds_config: source }],
    combined_validation_context: {
      default_validation_context: validation,
      validation_context_sds_secret_config: { name: names.bundle, sds_config: source },
    },
    alpn_protocols: alpn,
  };
}

/**
 * Whether an originator's (or relay's) tunnel cluster is TLS: always for strict (a node without
 * certificates then fails to connect, it never sends plaintext), for permissive when it has them, for
 * auto when it surely has one (`certified`) and so has every identity that may serve the Service.
 */
export function originatesTls(t: Tunnel, view: NodeView, certified: boolean): boolean {
  const mode = mtlsModeOf(t);
  if (mode === 'auto') return certified && t.servedCertified === true;
  return mode === 'strict' || (mode === 'permissive' && hasCertificates(view));
}

/** The tunnel cluster's transport socket: the node's certificate, and only the Service's terminators accepted. */
export function upstreamTransportSocket(t: Tunnel, view: NodeView, certified: boolean): ResourceObject | undefined {
  if (!originatesTls(t, view, certified)) return undefined;
  const sans = (t.servedBy ?? []).map((id) => ({ san_type: 'URI', matcher: spiffeMatcher(id) }));
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': tlsTypes.upstream,
      common_tls_context: commonContext(view, [t.settings.mode === 'h1' ? 'http/1.1' : 'h2'], {
        match_typed_subject_alt_names: sans,
      }),
    },
  };
}

/** The terminator's side: a client certificate from the trust bundle is required. */
export function downstreamTransportSocket(view: NodeView): ResourceObject {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': tlsTypes.downstream,
      require_client_certificate: true,
      common_tls_context: commonContext(view, ['h2', 'http/1.1']),
    },
  };
}

/** Which of a terminator's chains route a Service: mTLS (all but disable), plaintext (all but strict). */
export function routedOn(t: Tunnel, chain: 'mtls' | 'plaintext'): boolean {
  const mode = mtlsModeOf(t);
  return chain === 'mtls' ? mode !== 'disable' : mode !== 'strict';
}

export const tlsInspector = {
  name: 'envoy.filters.listener.tls_inspector',
  typed_config: { '@type': typeOf.tlsInspector },
};

/** Fields of the terminator's access log that name the peer (empty on plaintext connections). */
export const peerLogFields = {
  peer_identity: '%DOWNSTREAM_PEER_URI_SAN%',
  peer_serial: '%DOWNSTREAM_PEER_SERIAL%',
};
