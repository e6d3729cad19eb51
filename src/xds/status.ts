// The status of a state-of-the-world stream (StreamStatus, stream-status.ts), computed from the stream's
// own state when asked; and `streamStatus`, which gives either stream kind's.
import type { EncodedResource } from '../envoy/encode.js';
import { isWildcardKind, pushOrder, type ResourceKind } from '../envoy/protos.js';
import type { DeltaStream } from './delta.js';
import { DeltaStatus } from './delta-status.js';
import type { SotwStream } from './sotw-stream.js';
import {
  StatusOfStream,
  statusSince,
  typeStatus,
  type ResourceStatus,
  type StreamStatus,
  type TypeStatus,
} from './stream-status.js';

export function streamStatus(stream: SotwStream | DeltaStream): StreamStatus {
  return stream.mode === 'delta' ? new DeltaStatus(stream) : new SotwStatus(stream);
}

export class SotwStatus extends StatusOfStream<SotwStream> implements StreamStatus {
  readonly protocol = 'sotw' as const;

  changedAt(kind: ResourceKind): number | undefined {
    return this.stream.types.get(kind)?.changedAt;
  }

  types(): TypeStatus[] {
    const out: TypeStatus[] = [];
    for (const kind of pushOrder) {
      const t = this.stream.types.get(kind);
      if (!t) continue;
      const status = typeStatus(t);
      const sentAt = t.lastDelivery?.at;
      const answered = t.lastNonce === t.ackedNonce || t.lastNack?.nonce === t.lastNonce;
      out.push({
        kind,
        status,
        sentVersion: t.lastVersion,
        sentNonce: t.lastNonce,
        sentAt,
        ackedVersion: t.ackedVersion,
        ackedNonce: t.ackedNonce,
        pendingNonce: answered ? undefined : t.lastNonce,
        lastNack: t.lastNack,
        nacks: t.nacks,
        retryAt: t.retryAt,
        since: statusSince(status, { sentAt, ackedAt: t.ackedAt, lastNack: t.lastNack, connectedAt: this.connectedAt }),
        wildcard: t.wildcard,
        names: t.names,
      });
    }
    return out;
  }

  resources(): ResourceStatus[] {
    const stream = this.stream;
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
          entry.version = delivery.responseVersion;
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
}
