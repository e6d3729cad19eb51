// Text from the wire (node ids, NACK messages, metadata) and from input files, made safe to print in
// a terminal: control characters, bidirectional overrides and backslashes become visible escapes, so
// no value can move the cursor, recolour, hide text or forge a row of a table.
const unsafe = /[\\\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const named: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

export function escapeText(text: string): string {
  return text.replace(unsafe, (c) => {
    const code = c.charCodeAt(0);
    return named[c] ?? (code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`);
  });
}

/** Every string in a JSON-like value escaped (for logs meant for people). */
export function escapeDeep(value: unknown): unknown {
  if (typeof value === 'string') return escapeText(value);
  if (Array.isArray(value)) return value.map(escapeDeep);
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [escapeText(k), escapeDeep(v)]));
  }
  return value;
}
