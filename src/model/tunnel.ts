import type { Diagnostic } from './diagnostics.js';
import type { MtlsMode } from './mtls.js';
import type { ObjectRef, Origin } from './objects.js';
import type { IdentityCert } from './secrets.js';

export type TunnelMode = 'h2' | 'h1' | 'h2-post';
export type Placement = 'sidecar' | 'gateway';
export type LbPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'RING_HASH' | 'MAGLEV';
export type FallbackPolicy = 'NO_FALLBACK' | 'ANY_ENDPOINT' | 'DEFAULT_SUBSET';

export interface HeaderToAdd {
  name: string;
  /** A static value or an Envoy format string. */
  value: string;
}

/** Per-Service tunnel settings, parsed from `tunnel-shim.io/*` annotations. */
export interface TunnelSettings {
  mode: TunnelMode;
  /** The port terminators listen on for this Service's tunnels. */
  tunnelPort: number;
  /** sidecar: a terminator beside each endpoint delivers to exactly that endpoint; gateway: it balances. */
  placement: Placement;
  /** h2-post: the path of the POST; the terminator accepts POST on this path only. */
  postPath?: string;
  /** tunneling_config.hostname, possibly a format string; the default is the Service authority. */
  hostname?: string;
  /** The authorities terminators (and relays) accept for this Service; the default is the hostname or authority. */
  domains?: string[];
  headersToAdd?: HeaderToAdd[];
  propagateResponseHeaders?: boolean;
  propagateResponseTrailers?: boolean;
  idleTimeoutMs?: number;
  maxDownstreamConnectionDurationMs?: number;
  maxConnectAttempts?: number;
  /** A per-Service access log file, written on originators and terminators. */
  accessLog?: string;
  accessLogFormat?: string;
  hashPolicy?: 'source-ip';
  lbPolicy?: LbPolicy;
  /** Endpoint labels (Pod labels) a tunnel must match: Envoy's metadata_match under envoy.lb. */
  metadataMatch?: Record<string, string>;
  defaultSubset?: Record<string, string>;
  fallbackPolicy?: FallbackPolicy;
  maxConcurrentStreams?: number;
  /**
   * HTTP/2 PING period and the deadline for its answer on the tunnel cluster's connections; unset, the
   * defaults in defaults.ts (`http2Keepalive`) apply.
   */
  connectionKeepaliveIntervalMs?: number;
  connectionKeepaliveTimeoutMs?: number;
  /**
   * HTTP/2 receive windows of the tunnel cluster's connections (what the originator lets a terminator
   * send it) and the byte limit of each connection's buffers at both ends of the tunnel; unset, the
   * defaults in defaults.ts (`flowControl`) apply.
   */
  initialStreamWindowSize?: number;
  initialConnectionWindowSize?: number;
  perConnectionBufferLimitBytes?: number;
  /** Relays listen on this port and forward CONNECTs for this Service to its terminators. */
  relayPort?: number;
  /** Mutual TLS on the tunnel (unset: auto, see model/mtls.ts). */
  mtls?: MtlsMode;
  /** SPIFFE IDs (`*` as a whole segment) a terminator admits; unset: every authenticated peer. */
  allowedIdentities?: string[];
}

export interface Endpoint {
  address: string;
  /** The backend port on that address (the Service's target port as the EndpointSlice resolves it). */
  port: number;
  /** Labels of the Pod behind the address (EndpointSlice targetRef or Pod IP), when the source has it. */
  labels?: Record<string, string>;
  /** The service account of the Pod behind the address, when the source has it (its SPIFFE identity). */
  serviceAccount?: string;
}

/** One tunneled Service port: what every role is translated from. */
export interface Tunnel {
  /** `namespace/name:port`, stable and unique. */
  key: string;
  service: ObjectRef;
  portName: string;
  port: number;
  clusterIP?: string;
  /** The CONNECT authority: `name.namespace.svc.<cluster domain>:port`. */
  authority: string;
  settings: TunnelSettings;
  /** Ready endpoints, sorted by address then port. */
  endpoints: Endpoint[];
  origin?: Origin;
  /** A TCPRoute splits this port's traffic across these backend tunnels (by key) and weights. */
  split?: { tunnelKey: string; weight: number }[];
  /** Set on a backend a TCPRoute created: reached only through this parent Service port's listener. */
  via?: { name: string; port: number };
  /** mTLS: the SPIFFE IDs (`*` segments allowed) an originator accepts as this Service's terminators. */
  servedBy?: string[];
  /** Auto mTLS: every identity in `servedBy` has a certificate (or an external SDS server serves them). */
  servedCertified?: boolean;
}

export interface Model {
  tunnels: Tunnel[];
  diagnostics: Diagnostic[];
  /** Identities and their certificates (from identity Secrets), for mTLS tunnels. */
  tls?: ModelTls;
}

export interface ModelTls {
  trustDomain: string;
  /** Certificates by SPIFFE ID, served over SDS only to a node of that identity. */
  identities: ReadonlyMap<string, IdentityCert>;
}

export interface ModelOptions {
  clusterDomain: string;
  /**
   * `serve --access-log-dir`: the directories per-Service access logs may be written under (absolute,
   * normalised, no trailing slash). Unset or empty: any absolute path, as Envoy's own user may write.
   */
  accessLogDirs?: readonly string[];
  /** SPIFFE trust domain of identities (`serve --trust-domain`); default cluster.local. */
  trustDomain?: string;
  /** The mTLS mode of Services without tunnel-shim.io/mtls (`serve --mtls`); default auto. */
  mtlsDefault?: MtlsMode;
  /** A certificate this close to its end is a warning (`serve --cert-expiry-warning`); default 24 h. */
  expiryWarningMs?: number;
  /** `serve --sds`: certificates come from an external SDS server, not from identity Secrets. */
  externalSds?: boolean;
}

export const defaultModelOptions: ModelOptions = { clusterDomain: 'cluster.local' };
