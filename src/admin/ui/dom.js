// Small DOM helpers. Every string that came from the shim (node ids, NACK messages, object names) goes
// through textContent: it is shown as text and never parsed as markup.

/** An element with a class and text content. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

export const kinds = [
  ['cluster', 'CDS'],
  ['endpoint', 'EDS'],
  // Connection managers of terminators and relays (ECDS); originators never subscribe.
  ['extension', 'ECDS'],
  ['listener', 'LDS'],
  ['route', 'RDS'],
];

const rank = { SYNCED: 0, NOT_SENT: 1, STALE: 2, NACKED: 3 };

/** The worse of two statuses (NACKED > STALE > NOT_SENT > SYNCED); undefined when neither is set. */
export function worse(a, b) {
  if (!a) return b;
  if (!b) return a;
  return rank[b] > rank[a] ? b : a;
}

/** A node's worst per-type status. */
export function nodeStatus(node) {
  let status;
  for (const [kind] of kinds) status = worse(status, node.types[kind]?.status);
  return status ?? 'NOT_SENT';
}

/** A collapsible group (namespace or role) whose summary shows a name, a count and a status. */
export function makeGroup(name, open) {
  const details = el('details', 'group');
  details.open = open;
  const summary = el('summary');
  const title = el('span', 'mono', name);
  const count = el('span', 'count');
  const status = el('span', 'badge');
  summary.append(title, count, status);
  const body = el('div', 'group-body');
  details.append(summary, body);
  return { details, count, status, body, keys: [] };
}

export function setGroupSummary(group, countText, status) {
  group.count.textContent = countText;
  group.status.className = `badge ${status ?? ''}`;
  group.status.textContent = status && status !== 'SYNCED' ? status : '';
  group.status.hidden = !status || status === 'SYNCED';
}

/** Puts `children` into `parent` in this order, touching the DOM only when the order changed. */
export function placeInOrder(parent, keys, previousKeys, children) {
  if (keys.length === previousKeys.length && keys.every((k, i) => k === previousKeys[i])) return;
  parent.replaceChildren(...children);
}

export function matches(query, ...texts) {
  if (!query) return true;
  return texts.some((t) => t !== undefined && t !== null && String(t).toLowerCase().includes(query));
}

/** Up to `max` endpoint addresses, and how many more there are. */
export function addresses(endpoints, max) {
  if (endpoints.length === 0) return [el('span', 'addr missing', 'no ready endpoints')];
  const out = endpoints
    .slice(0, max)
    .map((e) => el('span', 'addr', e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`));
  if (endpoints.length > max) out.push(el('span', 'count', `and ${endpoints.length - max} more`));
  return out;
}

/** An arrow between two stages, labelled with the protocol on it. */
export function edge(label) {
  return el('div', 'edge', label);
}
