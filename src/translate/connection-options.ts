// HTTP/2 flow control, keepalive and buffer limits of tunnel connections, on both sides: the tunnel
// cluster's (originators and relays send) and the CONNECT connection managers' (terminators and relays
// receive). The values, and why they are what they are: model/defaults.ts.
import type { ResourceObject } from '../envoy/encode.js';
import { flowControl, http2Keepalive } from '../model/defaults.js';
import type { TunnelSettings } from '../model/tunnel.js';
import { duration } from './envoy-fields.js';

/** Bytes a tunnel's connections buffer at each end (app side, tunnel side, backend side). */
export function bufferLimit(s: TunnelSettings): number {
  return s.perConnectionBufferLimitBytes ?? flowControl.perConnectionBufferLimitBytes;
}

/** The tunnel side of a listener every Service on it shares: HTTP/2 frames in flight, not Service data. */
export const sharedListenerBufferLimit = flowControl.perConnectionBufferLimitBytes;

function keepalive(intervalMs: number, timeoutMs: number): ResourceObject {
  return { interval: duration(intervalMs), timeout: duration(timeoutMs) };
}

/**
 * HTTP/2 of a tunnel cluster: the Service's keepalive (a dead terminator is noticed after interval +
 * timeout) and receive windows that keep one stream from taking the connection.
 */
export function tunnelHttp2Options(s: TunnelSettings): ResourceObject {
  return {
    connection_keepalive: keepalive(
      s.connectionKeepaliveIntervalMs ?? http2Keepalive.intervalMs,
      s.connectionKeepaliveTimeoutMs ?? http2Keepalive.timeoutMs,
    ),
    initial_stream_window_size: s.initialStreamWindowSize ?? flowControl.initialStreamWindowSize,
    initial_connection_window_size: s.initialConnectionWindowSize ?? flowControl.initialConnectionWindowSize,
    ...(s.maxConcurrentStreams ? { max_concurrent_streams: s.maxConcurrentStreams } : {}),
  };
}

/**
 * HTTP/2 of a connection manager accepting CONNECT (terminators and relays): shared by every Service on
 * its listener, so the defaults, not any one Service's settings.
 */
export function connectServerHttp2Options(): ResourceObject {
  return {
    allow_connect: true,
    connection_keepalive: keepalive(http2Keepalive.intervalMs, http2Keepalive.timeoutMs),
    initial_stream_window_size: flowControl.initialStreamWindowSize,
    initial_connection_window_size: flowControl.initialConnectionWindowSize,
  };
}
