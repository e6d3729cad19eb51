import type { Diagnostic } from './diagnostics.js';
import type { ObjectRef, Origin } from './objects.js';

export type TunnelMode = 'h2' | 'h1' | 'h2-post';
export type Placement = 'sidecar' | 'gateway';

/** Per-Service tunnel settings, parsed from `tunnel-shim.io/*` annotations. */
export interface TunnelSettings {
  mode: TunnelMode;
  /** The port terminators listen on for this Service's tunnels. */
  tunnelPort: number;
  /** sidecar: a terminator beside each endpoint delivers to exactly that endpoint; gateway: it balances. */
  placement: Placement;
}

export interface Endpoint {
  address: string;
  /** The backend port on that address (the Service's target port as the EndpointSlice resolves it). */
  port: number;
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
}

export interface Model {
  tunnels: Tunnel[];
  diagnostics: Diagnostic[];
}

export interface ModelOptions {
  clusterDomain: string;
}

export const defaultModelOptions: ModelOptions = { clusterDomain: 'cluster.local' };
