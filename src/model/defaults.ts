// What every tunnel connection gets where its Service sets nothing (README "Always on"), in the model's
// units: the annotation checks compare against these, and translate formats them for Envoy.

/**
 * HTTP/2 flow control on tunnel connections, both sides. Envoy's defaults give a stream the whole
 * connection window (256 MiB each), so a few tunnels whose backend stops reading fill the window and
 * stop every other tunnel on the pooled connection. A stream may hold at most its window, so with the
 * connection window 16 streams' worth, 15 stuck streams still leave room for the rest; buffers per
 * connection (both ends of every tunnel) are bounded likewise. Figures in the README.
 */
export const flowControl = {
  initialStreamWindowSize: 256 * 1024,
  initialConnectionWindowSize: 4 * 1024 * 1024,
  perConnectionBufferLimitBytes: 64 * 1024,
} as const;

/**
 * HTTP/2 keepalive PINGs on tunnel connections (both sides; tunnel clusters unless a Service sets its
 * own): a peer that vanished without a FIN is noticed within interval (+15 % jitter) + timeout, at most
 * 9.75 s, instead of at the TCP timeout. A PING and its ACK are 17 bytes each: for 1,000 pooled
 * connections, PINGed from both ends, 1000 x 4 x 17 B / 5 s = 13.6 KB/s of HTTP/2 (README).
 */
export const http2Keepalive = { intervalMs: 5000, timeoutMs: 4000 } as const;
