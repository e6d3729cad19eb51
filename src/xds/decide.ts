// The whole ACK/NACK decision for one state-of-the-world request, as one pure function (the shape of
// Istio's ShouldRespond): request + what this stream last sent -> what the request means.

export interface SotwRequest {
  versionInfo: string;
  responseNonce: string;
  errorMessage?: string;
}

export interface SentState {
  /** Nonce of the last response sent for this type, if any. */
  lastNonce?: string;
}

export type Decision =
  /** First request for the type on this stream (or after a reconnect): subscribe and send. */
  | { kind: 'subscribe' }
  /** The client accepted our last response; send only if the subscription grew. */
  | { kind: 'ack' }
  /** The client rejected our last response: record it, do not resend the same content. */
  | { kind: 'nack'; message: string }
  /** Answers a response that is no longer the latest: a newer one is in flight, ignore it. */
  | { kind: 'stale' };

export function decide(request: SotwRequest, sent: SentState): Decision {
  if (request.responseNonce === '') return { kind: 'subscribe' };
  if (request.responseNonce !== sent.lastNonce) return { kind: 'stale' };
  if (request.errorMessage !== undefined) return { kind: 'nack', message: request.errorMessage };
  return { kind: 'ack' };
}

/** An empty list or `*` subscribes to everything of the type (LDS and CDS wildcards). */
export function isWildcard(names: readonly string[]): boolean {
  return names.length === 0 || names.includes('*');
}
