// The Nodes pane (connected Envoys per role, a badge per xDS type), the selected node's details with
// its NACK messages, and the Diagnostics pane.
import { el, kinds, makeGroup, matches, nodeStatus, placeInOrder, setGroupSummary, worse } from './dom.js';

const roleNames = [
  ['originate', 'originators'],
  ['relay', 'relays'],
  ['terminate', 'terminators'],
];

export class NodesPane {
  constructor(container, emptyNote, onSelectNode) {
    this.container = container;
    this.emptyNote = emptyNote;
    this.rows = new Map();
    this.groups = new Map();
    this.selected = null;
    container.addEventListener('click', (event) => {
      const row = event.target.closest('[data-node]');
      if (row) onSelectNode(row.dataset.node);
    });
  }

  update(nodes) {
    const seen = new Set();
    const byRole = new Map(roleNames.map(([role]) => [role, []]));
    const open = nodes.length <= 60;
    for (const node of nodes) {
      seen.add(node.id);
      let row = this.rows.get(node.id);
      if (!row) {
        row = { el: el('div', 'node'), sig: '' };
        row.el.dataset.node = node.id;
        this.rows.set(node.id, row);
      }
      row.node = node;
      const sig = JSON.stringify(node);
      if (sig !== row.sig) fillNode(row, node, sig);
      row.el.classList.toggle('selected', node.id === this.selected);
      (byRole.get(node.role) ?? byRole.get('originate')).push(row);
    }
    for (const [id, row] of this.rows) {
      if (seen.has(id)) continue;
      row.el.remove();
      this.rows.delete(id);
    }
    const order = [];
    for (const [role, label] of roleNames) {
      const rows = byRole.get(role);
      let group = this.groups.get(role);
      if (!group) this.groups.set(role, (group = makeGroup(label, open)));
      const keys = rows.map((r) => r.node.id);
      placeInOrder(
        group.body,
        keys,
        group.keys,
        rows.map((r) => r.el),
      );
      group.keys = keys;
      let status;
      for (const r of rows) status = worse(status, nodeStatus(r.node));
      setGroupSummary(group, String(rows.length), status);
      group.details.hidden = rows.length === 0;
      order.push(group.details);
    }
    if (this.container.children.length !== order.length) this.container.replaceChildren(...order);
    this.emptyNote.hidden = nodes.length > 0;
  }

  select(id) {
    this.selected = id;
    for (const [nodeId, row] of this.rows) row.el.classList.toggle('selected', nodeId === id);
  }

  filter(query) {
    for (const group of this.groups.values()) {
      let shown = 0;
      for (const id of group.keys) {
        const row = this.rows.get(id);
        const hit = matches(query, row.node.id, row.node.listenAddress, row.node.role);
        row.el.hidden = !hit;
        if (hit) shown++;
      }
      group.details.hidden = shown === 0;
      if (query && shown > 0) group.details.open = true;
    }
  }
}

function fillNode(row, node, sig) {
  row.sig = sig;
  const badges = el('span', 'badges');
  for (const [kind, short] of kinds) {
    const t = node.types[kind];
    const badge = el('span', `badge ${t?.status ?? ''}`, short);
    badge.title = t ? `${short} ${t.status}${t.nack ? `: ${t.nack.message}` : ''}` : `${short}: not subscribed`;
    badges.append(badge);
  }
  row.el.replaceChildren(el('span', 'node-id', node.id), el('span', 'tag', node.protocol), badges);
  row.el.title = node.id;
}

/** The selected node's details: identity, and per type its status, version and NACK message. */
export function renderDetails(container, node, id) {
  if (!node) {
    container.replaceChildren(el('p', 'node-id', id), el('p', 'empty', 'This node is not connected (any more).'));
    return;
  }
  const facts = el('dl', 'kv');
  const fact = (name, value) => facts.append(el('dt', '', name), el('dd', 'mono', value ?? '-'));
  fact('id', node.id);
  fact('role', node.role);
  fact(
    'listen address',
    node.listenAddress ?? (node.role === 'originate' ? 'each Service clusterIP' : 'all addresses'),
  );
  fact('protocol', node.protocol === 'delta' ? 'delta xDS' : 'state of the world');
  fact('connected at', node.connectedAt);
  const table = el('table', 'types');
  const header = el('tr');
  for (const h of ['type', 'status', 'version sent']) header.append(el('th', '', h));
  table.append(header);
  for (const [kind, short] of kinds) {
    const t = node.types[kind];
    const tr = el('tr');
    const statusCell = el('td');
    statusCell.append(el('span', `badge ${t?.status ?? ''}`, t?.status ?? 'not subscribed'));
    tr.append(
      el('td', '', `${short} (${kind}s)`),
      statusCell,
      el('td', 'mono', t?.version ? t.version.slice(0, 12) : '-'),
    );
    table.append(tr);
    if (t?.nack) {
      const nackRow = el('tr');
      const cell = el('td');
      cell.colSpan = 3;
      const current = t.status === 'NACKED' ? 'NACK' : 'earlier NACK (the content after it was accepted)';
      cell.append(el('span', 'count', `${current} at ${t.nack.at}:`), el('pre', 'nack', t.nack.message));
      nackRow.append(cell);
      table.append(nackRow);
    }
  }
  container.replaceChildren(facts, table);
}

export function renderDiagnostics(list, emptyNote, counter, diagnostics, query) {
  const items = [];
  for (const d of diagnostics) {
    if (!matches(query, d.text)) continue;
    items.push(el('li', d.severity, d.text));
  }
  list.replaceChildren(...items);
  const errors = diagnostics.filter((d) => d.severity === 'error').length;
  const count = (n, what) => `${n} ${what}${n === 1 ? '' : 's'}`;
  counter.textContent = diagnostics.length
    ? `${count(errors, 'error')}, ${count(diagnostics.length - errors, 'warning')}`
    : '';
  emptyNote.hidden = diagnostics.length > 0;
}
