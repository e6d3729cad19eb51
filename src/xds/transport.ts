// What every ADS stream shares, whatever its protocol variant: nonces, the push loop in
// make-before-break order, and backpressure that keeps at most one pending state per client.
import { randomBytes } from 'node:crypto';
import { pushOrder, type ResourceKind } from '../envoy/protos.js';
import type { Watch } from './cache.js';
import type { NodeIdentity } from './node.js';

export interface ResponseSink {
  /** Returns false when the transport is full; `onDrain` is then called once it has room again. */
  write(response: Buffer): boolean;
}

export abstract class StreamTransport {
  readonly connectedAt = new Date();
  /** Bytes and responses handed to the transport, and how often it pushed back: for tests and benchmarks. */
  readonly counters = { bytes: 0, responses: 0, blocked: 0 };
  private nonceCounter = 0;
  private readonly noncePrefix = randomBytes(4).toString('hex');
  protected blocked = false;
  protected dirty = false;

  constructor(
    readonly node: NodeIdentity,
    protected readonly watch: Watch,
    private readonly sink: ResponseSink,
    protected readonly controlPlaneId: string,
  ) {}

  /** Sends what changed for one type, if anything. */
  protected abstract pushChanges(kind: ResourceKind): void;

  /** Called when the node's snapshot changed. */
  push(): void {
    for (const kind of pushOrder) {
      if (this.blocked) {
        this.dirty = true;
        return;
      }
      this.pushChanges(kind);
    }
  }

  get isBlocked(): boolean {
    return this.blocked;
  }

  /** The transport drained: send the latest state once, whatever happened meanwhile. */
  onDrain(): void {
    this.blocked = false;
    if (this.dirty) {
      this.dirty = false;
      this.push();
    }
  }

  close(): void {
    this.watch.cancel();
  }

  protected nextNonce(): string {
    return `${this.noncePrefix}-${++this.nonceCounter}`;
  }

  protected send(response: Buffer): void {
    this.counters.bytes += response.length;
    this.counters.responses++;
    if (!this.sink.write(response)) {
      this.blocked = true;
      this.counters.blocked++;
    }
  }
}
