// Checks per kind of value that ends up in an Envoy resource (authorities, header values, paths,
// names; durations are in durations.ts), each as strict as Envoy or the wire is. A value Envoy would
// NACK, or one it accepts but that breaks every connection (a space in an :authority), becomes an error
// on the field that carries it instead. Pure string checks; annotation-table.ts uses them per kind, so a
// new row gets them too.
import { isIP } from 'node:net';

/** What a JSON string shows of a character, e.g. `" "` or `"\u0007"`. */
const shown = (c: string) => JSON.stringify(c);

// RFC 3986 reg-name characters (unreserved and sub-delims). Percent-encoding is left out: in these
// values `%` starts an Envoy format command, and DNS names never need it.
const hostChar = /[A-Za-z0-9\-._~!$&'()*+,;=]/;
const wildcardElsewhere = 'a wildcard belongs in tunnel-shim.io/domains';

/**
 * Why `text` is not an authority `host[:port]` (RFC 9110 uri-host and port, as HTTP/2's `:authority`
 * carries it), or undefined. `wildcard`: one leading `*` as Envoy's virtual host domains allow
 * (`*.example.com:443`, `*:1234`); anywhere else `*` is refused, so a terminator never routes a pattern.
 */
export function checkAuthority(text: string, options: { wildcard?: boolean } = {}): string | undefined {
  const bad = (why: string) => `${JSON.stringify(text)} is not an authority like host:port (${why})`;
  let host = text;
  let port: string | undefined;
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    if (end < 0) return bad('an IPv6 address needs its closing "]"');
    if (isIP(text.slice(1, end)) !== 6) return bad(`${JSON.stringify(text.slice(1, end))} is not an IPv6 address`);
    host = '';
    const rest = text.slice(end + 1);
    if (rest !== '' && !rest.startsWith(':')) return bad('only :port may follow "]"');
    port = rest === '' ? undefined : rest.slice(1);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon >= 0) [host, port] = [text.slice(0, colon), text.slice(colon + 1)];
    const body = options.wildcard && host.startsWith('*') ? host.slice(1) : host;
    if (host === '') return bad('no host');
    for (const c of body) {
      if (c === '*') {
        return bad(options.wildcard ? 'a "*" may only lead, as in *.example.com:443' : wildcardElsewhere);
      }
      if (!hostChar.test(c)) return bad(`${shown(c)} is not allowed in a host name`);
    }
  }
  const portNumber = Number(port);
  if (port !== undefined && (!/^\d{1,5}$/.test(port) || portNumber < 1 || portNumber > 65535)) {
    return bad(`${JSON.stringify(port)} is not a port (1-65535)`);
  }
  return undefined;
}

/**
 * Literal text around Envoy format commands (`%CMD%`, `%CMD(arg):n%`): what reaches the wire as written.
 * Commands are checked by format.ts; here only the characters the user typed around them.
 */
export function literalParts(text: string): string {
  return text.replace(/%[A-Z][A-Z0-9_]*(\([^)]*\))?(:\d+)?%/g, '');
}

/** Why the literal parts of a format-string authority (`%REQUESTED_SERVER_NAME%:443`) cannot be in one. */
export function checkAuthorityFormat(text: string): string | undefined {
  for (const c of literalParts(text)) {
    if (c === '*') return `${JSON.stringify(text)}: a wildcard belongs in tunnel-shim.io/domains`;
    if (!hostChar.test(c) && !':[]'.includes(c)) {
      return `${JSON.stringify(text)}: ${shown(c)} is not allowed in an authority`;
    }
  }
  return undefined;
}

/**
 * Why a header value (literal parts of a format string) is not an RFC 9110 field value as HTTP/2 sends
 * it (RFC 9113 8.2.1): no control characters but tab, no leading or trailing whitespace.
 */
export function checkHeaderValue(text: string): string | undefined {
  const literal = literalParts(text);
  const control = /[\u0000-\u0008\u000A-\u001F\u007F]/.exec(literal);
  if (control) return `contains the control character ${shown(control[0])}`;
  if (/^[ \t]|[ \t]$/.test(text)) return 'starts or ends with whitespace, which HTTP/2 forbids in a header value';
  return undefined;
}

/** An absolute request path of RFC 3986 `pchar`s (no query, fragment or percent-encoding). */
export function checkPath(text: string): string | undefined {
  if (/^\/[A-Za-z0-9._~!$&'()*+,;=:@/-]*$/.test(text)) return undefined;
  return `${JSON.stringify(text)} is not an absolute path like /tunnel`;
}

/**
 * Why a string is not well-formed Unicode (a lone UTF-16 surrogate, which YAML and JSON escapes such as
 * "\ud800" can produce): protobuf strings are UTF-8, and encoding one would silently replace it.
 */
export function checkUnicode(text: string): string | undefined {
  const lone = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.exec(text);
  if (!lone) return undefined;
  const code = lone[0].charCodeAt(0).toString(16);
  return `is not valid UTF-8 (a lone surrogate \\u${code} at character ${lone.index + 1})`;
}

/** RFC 1123 DNS label (Kubernetes namespaces; Service names are stricter, RFC 1035, checked by the API server). */
export function checkDnsLabel(text: string): string | undefined {
  if (/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(text) && text.length <= 63) return undefined;
  const rule = 'lowercase letters, digits and "-", at most 63';
  return `${JSON.stringify(text)} is not a DNS label (${rule}), so it cannot be part of an authority`;
}
