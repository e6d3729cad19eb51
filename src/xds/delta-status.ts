// The status of a delta stream (StreamStatus, stream-status.ts). The stream knows per name which version
// the client holds (`known`); DeltaDeliveries adds which response carried it and whether that response
// was ACKed or NACKed, so CSDS can say per resource what it says for a state-of-the-world stream.
import type { EncodedResource } from '../envoy/encode.js';
import { pushOrder, type ResourceKind } from '../envoy/protos.js';
import type { DeltaStream } from './delta.js';
import type { Delivery } from './ledger.js';
import {
  StatusOfStream,
  statusSince,
  typeStatus,
  type NackRecord,
  type ResourceStatus,
  type StreamStatus,
} from './stream-status.js';
import type { TypeStatus } from './stream-status.js';

/** Per-name records kept past an ACK before they fold into one (as SentLedger does for SotW streams). */
const maxDeliveries = 256;

/** One type of one delta stream: the responses sent and answered, and which one carried each name. */
export class DeltaDeliveries {
  /** Sequence number of the last response sent and of the last one ACKed (0: none). */
  lastSeq = 0;
  ackedSeq = 0;
  last?: Delivery;
  /** When the last ACK came (epoch ms). */
  ackedAt?: number;
  /** See StreamStatus.changedAt; cleared once the response is answered. */
  changedAt?: number;
  /** The response that carried every resource of the view, and names carried by later ones. */
  private base?: Delivery;
  private byName?: Map<string, Delivery>;

  /** A response went out carrying `names` (`all`: every resource of the view) at `version`. */
  sent(names: readonly string[], all: boolean, version: string, changedAt: number | undefined): void {
    const delivery: Delivery = { seq: ++this.lastSeq, responseVersion: version, at: new Date() };
    this.last = delivery;
    this.changedAt = changedAt;
    if (all) {
      this.base = delivery;
      this.byName = undefined;
    } else for (const name of names) (this.byName ??= new Map()).set(name, delivery);
  }

  acked(): void {
    this.ackedSeq = this.lastSeq;
    this.ackedAt = Date.now();
    this.changedAt = undefined;
    // Everything is ACKed: past the bound, every name reads as carried by the last response.
    if ((this.byName?.size ?? 0) > maxDeliveries) {
      this.base = this.last;
      this.byName = undefined;
    }
  }

  nacked(nack: NackRecord): void {
    if (this.last) this.last.nack = nack;
    this.changedAt = undefined;
  }

  /** The response that last carried `name` (undefined: the client reported holding it on reconnect). */
  of(name: string): Delivery | undefined {
    return this.byName?.get(name) ?? this.base;
  }
}

export class DeltaStatus extends StatusOfStream<DeltaStream> implements StreamStatus {
  readonly protocol = 'delta' as const;

  changedAt(kind: ResourceKind): number | undefined {
    return this.stream.types.get(kind)?.deliveries.changedAt;
  }

  types(): TypeStatus[] {
    const out: TypeStatus[] = [];
    for (const kind of pushOrder) {
      const t = this.stream.types.get(kind);
      if (!t) continue;
      const status = typeStatus(t);
      const { last, ackedAt } = t.deliveries;
      const answered = t.lastNonce === t.ackedNonce || t.lastNack?.nonce === t.lastNonce;
      out.push({
        kind,
        status,
        sentVersion: t.lastVersion,
        sentNonce: t.lastNonce,
        sentAt: last?.at,
        ackedVersion: t.ackedVersion,
        ackedNonce: t.ackedNonce,
        pendingNonce: answered ? undefined : t.lastNonce,
        lastNack: t.lastNack,
        nacks: t.nacks,
        retryAt: t.retryAt,
        since: statusSince(status, { sentAt: last?.at, ackedAt, lastNack: t.lastNack, connectedAt: this.connectedAt }),
        wildcard: t.wildcard,
        names: t.names,
      });
    }
    return out;
  }

  resources(): ResourceStatus[] {
    const snapshot = this.stream.snapshot();
    const out: ResourceStatus[] = [];
    for (const kind of pushOrder) {
      const state = this.stream.types.get(kind);
      if (!state?.started) continue;
      const current = snapshot?.[kind].resources ?? new Map<string, EncodedResource>();
      const names = state.wildcard ? new Set([...current.keys(), ...state.names]) : state.names;
      for (const name of [...names].sort()) {
        const held = state.known.get(name);
        const inSnapshot = current.get(name);
        // null: the client was told the name does not exist.
        const entry: ResourceStatus = { kind, name, status: 'NOT_SENT', missing: !inSnapshot && !held };
        if (typeof held === 'string') {
          const delivery = state.deliveries.of(name);
          entry.version = held;
          entry.lastUpdated = delivery?.at;
          if (inSnapshot?.version === held) entry.resource = inSnapshot;
          if (delivery?.nack) {
            entry.status = 'NACKED';
            entry.nack = { ...delivery.nack, version: held };
          } else entry.status = !delivery || delivery.seq <= state.deliveries.ackedSeq ? 'SYNCED' : 'STALE';
          // Sent again after a NACK and not answered yet: the rejection stays visible until an ACK.
          if (entry.status === 'STALE' && state.nacks > 0 && state.lastNack) entry.nack = state.lastNack;
        }
        out.push(entry);
      }
    }
    return out;
  }
}
