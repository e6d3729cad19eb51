// Checks for the values users write in Envoy's own forms: format strings (%COMMAND(arg):len%) and
// header names. Envoy rejects a bad one by NACKing the whole listener, so they are caught here first
// and reported on the annotation that carries them.

/** Format commands a tunnel setting may use. Envoy knows more; these are the ones that make sense on a tunnel. */
const plainCommands = new Set([
  'REQUESTED_SERVER_NAME',
  'DOWNSTREAM_REMOTE_ADDRESS',
  'DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT',
  'DOWNSTREAM_REMOTE_PORT',
  'DOWNSTREAM_LOCAL_ADDRESS',
  'DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT',
  'DOWNSTREAM_LOCAL_PORT',
  'DOWNSTREAM_DIRECT_REMOTE_ADDRESS',
  'DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT',
  'DOWNSTREAM_TLS_VERSION',
  'DOWNSTREAM_PEER_URI_SAN',
  'DOWNSTREAM_LOCAL_URI_SAN',
  'DOWNSTREAM_PEER_SERIAL',
  'DOWNSTREAM_PEER_SUBJECT',
  'DOWNSTREAM_PEER_ISSUER',
  'DOWNSTREAM_PEER_FINGERPRINT_256',
  'UPSTREAM_PEER_URI_SAN',
  'UPSTREAM_PEER_SUBJECT',
  'UPSTREAM_PEER_ISSUER',
  'CONNECTION_ID',
  'UPSTREAM_CONNECTION_ID',
  'UPSTREAM_CLUSTER',
  'UPSTREAM_CLUSTER_RAW',
  'UPSTREAM_HOST',
  'UPSTREAM_HOST_NAME',
  'UPSTREAM_LOCAL_ADDRESS',
  'UPSTREAM_REMOTE_ADDRESS',
  'UPSTREAM_TRANSPORT_FAILURE_REASON',
  'HOSTNAME',
  'PROTOCOL',
  'UPSTREAM_PROTOCOL',
  'RESPONSE_CODE',
  'RESPONSE_CODE_DETAILS',
  'RESPONSE_FLAGS',
  'RESPONSE_FLAGS_LONG',
  'CONNECTION_TERMINATION_DETAILS',
  'BYTES_RECEIVED',
  'BYTES_SENT',
  'DURATION',
  'ROUTE_NAME',
  'UPSTREAM_WIRE_BYTES_SENT',
  'UPSTREAM_WIRE_BYTES_RECEIVED',
  'DOWNSTREAM_WIRE_BYTES_SENT',
  'DOWNSTREAM_WIRE_BYTES_RECEIVED',
  'STREAM_ID',
  'ACCESS_LOG_TYPE',
  'UNIQUE_ID',
  'START_TIME',
  'EMIT_TIME',
  'UPSTREAM_REQUEST_ATTEMPT_COUNT',
  'VIRTUAL_CLUSTER_NAME',
]);
/** Commands that take `(argument)`; START_TIME's is optional. */
const argCommands = new Set([
  'REQ',
  'RESP',
  'TRAILER',
  'FILTER_STATE',
  'DYNAMIC_METADATA',
  'CLUSTER_METADATA',
  'UPSTREAM_METADATA',
  'ENVIRONMENT',
  'START_TIME',
  'EMIT_TIME',
  'UPSTREAM_FILTER_STATE',
]);

const command = /%([A-Z][A-Z0-9_]*)(?:\(([^)]*)\))?(?::(\d+))?%/g;

/** `undefined` when Envoy would accept `text` as a format string, else why not. */
export function checkFormat(text: string): string | undefined {
  let rest = '';
  let last = 0;
  for (const m of text.matchAll(command)) {
    rest += text.slice(last, m.index);
    last = m.index + m[0].length;
    const [, name, arg] = m as unknown as [string, string, string | undefined];
    if (arg !== undefined) {
      if (!argCommands.has(name)) return `%${name}% takes no argument`;
      if (arg === '' && name !== 'START_TIME' && name !== 'EMIT_TIME') return `%${name}()% needs an argument`;
    } else if (!plainCommands.has(name)) {
      return argCommands.has(name) && name !== 'START_TIME' && name !== 'EMIT_TIME'
        ? `%${name}% needs an argument, like %${name}(x)%`
        : `unknown format command %${name}%`;
    }
  }
  rest += text.slice(last);
  if (rest.includes('%')) return 'a "%" that does not start a format command like %DOWNSTREAM_REMOTE_ADDRESS%';
  if (/[\r\n\0]/.test(text)) return 'contains a line break or NUL';
  return undefined;
}

export function hasFormatCommand(text: string): boolean {
  return /%[A-Z][A-Z0-9_]*(\([^)]*\))?(:\d+)?%/.test(text);
}

const token = /^[a-z0-9!#$&'*+.^_`|~-]+$/;

/** Header names a tunnel may add: lowercase tokens, never pseudo-headers or ones Envoy owns. */
export function checkHeaderName(name: string): string | undefined {
  if (name.startsWith(':')) return `${JSON.stringify(name)} is a pseudo-header; it cannot be added`;
  if (!token.test(name)) return `${JSON.stringify(name)} is not a lowercase HTTP header name`;
  if (
    [
      'host',
      'connection',
      'upgrade',
      'transfer-encoding',
      'te',
      'keep-alive',
      'proxy-connection',
      'content-length',
    ].includes(name)
  ) {
    return `${JSON.stringify(name)} is managed by Envoy; it cannot be added`;
  }
  return undefined;
}
