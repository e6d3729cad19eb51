// One status interface for both ADS stream kinds: per type what was last sent (version, nonce, when),
// whether the node ACKed or NACKed it, what it subscribes to, and per resource what it holds. CSDS,
// /debug/nodes, /ui, `tunnel-shim status` and /metrics read only this, so a delta Envoy shows wherever
// a state-of-the-world one does, the same way. Implemented by status.ts (SotW; `streamStatus` picks)
// and delta-status.ts.
import type { EncodedResource } from '../envoy/encode.js';
import type { ResourceKind } from '../envoy/protos.js';
import type { NodeIdentity } from './node.js';
import type { NackRecord } from './sotw-stream.js';
import type { BaseStream } from './base-stream.js';

export type { NackRecord };

/** SYNCED: ACKed what was last sent; STALE: sent, no answer yet; NACKED: rejected; NOT_SENT: nothing sent. */
export type SyncStatus = 'SYNCED' | 'STALE' | 'NACKED' | 'NOT_SENT';

/** The ADS variant a node speaks: StreamAggregatedResources or DeltaAggregatedResources. */
export type Protocol = 'sotw' | 'delta';

export interface TypeStatus {
  kind: ResourceKind;
  status: SyncStatus;
  /** Version of the last response sent (SotW version_info, delta system_version_info), its nonce, when. */
  sentVersion?: string;
  sentNonce?: string;
  sentAt?: Date;
  ackedVersion?: string;
  ackedNonce?: string;
  /** The nonce of a response sent and not answered yet (neither ACKed nor NACKed). */
  pendingNonce?: string;
  lastNack?: NackRecord;
  /** NACKs since the type was last ACKed: the last one stays relevant while this is above 0. */
  nacks: number;
  /** When NACKed content is sent again (epoch ms), while a retry is scheduled. */
  retryAt?: number;
  /** Since when the type has its status: the ACK, the send or the NACK (the connection when not known). */
  since?: Date;
  /** Subscribed to every resource of the type (besides any names). */
  wildcard: boolean;
  /** Names subscribed explicitly; read only. */
  names: ReadonlySet<string>;
}

export interface ResourceStatus {
  kind: ResourceKind;
  name: string;
  status: SyncStatus;
  /** The resource is neither in the node's snapshot nor anywhere the shim knows (asked for by name). */
  missing: boolean;
  /**
   * The version the node reports for it (what its config_dump shows): SotW the version_info of the
   * response that carried it, delta the resource's own version.
   */
  version?: string;
  lastUpdated?: Date;
  /** What was sent, when the snapshot still holds that exact content. */
  resource?: EncodedResource;
  /** The rejection, with the version that was rejected. */
  nack?: NackRecord;
}

export interface StreamStatus {
  readonly node: NodeIdentity;
  readonly protocol: Protocol;
  readonly connectedAt: Date;
  /** Responses wait because the node reads too slowly (backpressure): it gets the latest state on drain. */
  readonly held: boolean;
  /** Types the node asked for, in push order. */
  types(): TypeStatus[];
  /**
   * When the source change behind the type's last response happened (epoch ms), while that response is
   * unanswered and was pushed because of a change: what push and convergence times are measured from.
   */
  changedAt(kind: ResourceKind): number | undefined;
  /** Every resource the node subscribes to, by type in push order, then by name. */
  resources(): ResourceStatus[];
}

/** What both kinds' statuses read the same way from the stream itself (base-stream.ts). */
export abstract class StatusOfStream<S extends BaseStream> {
  constructor(protected readonly stream: S) {}

  get node(): NodeIdentity {
    return this.stream.node;
  }
  get connectedAt(): Date {
    return this.stream.connectedAt;
  }
  get held(): boolean {
    return this.stream.isBlocked;
  }
}

export function typeStatus(t: {
  lastVersion?: string;
  lastNack?: NackRecord;
  lastNonce?: string;
  ackedVersion?: string;
}): SyncStatus {
  if (!t.lastVersion) return 'NOT_SENT';
  if (t.lastNack && t.lastNack.nonce === t.lastNonce) return 'NACKED';
  return t.ackedVersion === t.lastVersion ? 'SYNCED' : 'STALE';
}

/** When a type entered its status (see TypeStatus.since). */
export function statusSince(
  status: SyncStatus,
  times: { sentAt?: Date; ackedAt?: number; lastNack?: NackRecord; connectedAt: Date },
): Date | undefined {
  if (status === 'NACKED' && times.lastNack) return new Date(times.lastNack.at);
  if (status === 'STALE') return times.sentAt;
  if (status === 'SYNCED') return times.ackedAt !== undefined ? new Date(times.ackedAt) : times.connectedAt;
  return undefined;
}

export function byNodeId(a: StreamStatus, b: StreamStatus): number {
  return a.node.id < b.node.id ? -1 : a.node.id > b.node.id ? 1 : 0;
}
