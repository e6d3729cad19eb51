// What a node holds, per type and per resource, computed from one stream's state: shared by the admin
// views, CSDS and `tunnel-shim status`, so they can never disagree.
import type { EncodedResource } from '../envoy/encode.js';
import { isWildcardKind, pushOrder, type ResourceKind } from '../envoy/protos.js';
import type { SotwStream, NackRecord, TypeState } from './sotw-stream.js';

/** SYNCED: ACKed what was last sent; STALE: sent, no answer yet; NACKED: rejected; NOT_SENT: nothing sent. */
export type SyncStatus = 'SYNCED' | 'STALE' | 'NACKED' | 'NOT_SENT';

export function typeStatus(t: Pick<TypeState, 'lastVersion' | 'lastNack' | 'lastNonce' | 'ackedVersion'>): SyncStatus {
  if (!t.lastVersion) return 'NOT_SENT';
  if (t.lastNack && t.lastNack.nonce === t.lastNonce) return 'NACKED';
  return t.ackedVersion === t.lastVersion ? 'SYNCED' : 'STALE';
}

export interface ResourceStatus {
  kind: ResourceKind;
  name: string;
  status: SyncStatus;
  /** The resource is neither in the node's snapshot nor anywhere the shim knows (asked for by name). */
  missing: boolean;
  /** version_info of the response that carried it. */
  responseVersion?: string;
  lastUpdated?: Date;
  /** What was sent, when the snapshot still holds that exact content. */
  resource?: EncodedResource;
  nack?: NackRecord;
}

export function resourceStatuses(stream: SotwStream): ResourceStatus[] {
  const snapshot = stream.snapshot();
  const out: ResourceStatus[] = [];
  for (const kind of pushOrder) {
    const state = stream.types.get(kind);
    if (!state?.requested) continue;
    const current = snapshot?.[kind].resources ?? new Map<string, EncodedResource>();
    const names = state.wildcard || (isWildcardKind(kind) && state.names.size === 0) ? current.keys() : state.names;
    for (const name of [...names].sort()) {
      const delivery = state.ledger.delivery(name);
      const inSnapshot = current.get(name);
      const sentVersion = state.ledger.sent(name)?.version;
      const entry: ResourceStatus = { kind, name, status: 'NOT_SENT', missing: !inSnapshot && !delivery };
      if (delivery) {
        entry.responseVersion = delivery.responseVersion;
        entry.lastUpdated = delivery.at;
        if (inSnapshot && inSnapshot.version === sentVersion) entry.resource = inSnapshot;
        if (delivery.nack) {
          entry.status = 'NACKED';
          entry.nack = delivery.nack;
        } else entry.status = delivery.seq <= state.ackedSeq ? 'SYNCED' : 'STALE';
        // Sent again after a NACK and not answered yet: the rejection stays visible until an ACK.
        if (entry.status === 'STALE' && state.nacks > 0) entry.nack = state.lastNack;
      }
      out.push(entry);
    }
  }
  return out;
}
