// The Services pane: per namespace, per tunneled Service port, the path a connection takes:
// originators → relays → terminators → backends, each stage with its node count and worst status.
// Each row is rebuilt only when what it shows changed (a signature per row).
import { addresses, edge, el, makeGroup, matches, nodeStatus, placeInOrder, setGroupSummary, worse } from './dom.js';

const anyAddress = new Set([undefined, null, '', '0.0.0.0', '::']);
const protocolOf = { h2: 'HTTP/2 CONNECT', h1: 'HTTP/1.1 CONNECT', 'h2-post': 'HTTP/2 POST' };

/** Nodes per role, worked out once per update: a Service's stages are sums of these, not scans of every node. */
export function roleIndex(nodes) {
  const bucket = () => ({ nodes: [], status: undefined });
  const index = {
    originate: bucket(),
    relay: bucket(),
    everyTerminator: bucket(),
    anyAddress: bucket(),
    byIp: new Map(),
  };
  for (const node of nodes) {
    const status = nodeStatus(node);
    const add = (b) => {
      b.nodes.push(node);
      b.status = worse(b.status, status);
    };
    if (node.role === 'originate') add(index.originate);
    else if (node.role === 'relay') add(index.relay);
    else if (node.role === 'terminate') {
      add(index.everyTerminator);
      if (anyAddress.has(node.listenAddress)) add(index.anyAddress);
      else {
        if (!index.byIp.has(node.listenAddress)) index.byIp.set(node.listenAddress, bucket());
        add(index.byIp.get(node.listenAddress));
      }
    }
  }
  return index;
}

/** The buckets of terminators that serve a Service: all of them, or unbound ones plus those bound to its endpoints. */
function terminatorBuckets(svc, index) {
  if (svc.everyTerminator) return [index.everyTerminator];
  const ips = new Set(svc.endpoints.map((e) => e.address));
  return [index.anyAddress, ...[...ips].map((ip) => index.byIp.get(ip)).filter(Boolean)];
}

function stageOf(buckets) {
  let count = 0;
  let status;
  for (const b of buckets) {
    count += b.nodes.length;
    status = worse(status, b.status);
  }
  return { count, status: count ? status : null };
}

function membersOf(role, svc, index) {
  const buckets =
    role === 'originate' ? [index.originate] : role === 'relay' ? [index.relay] : terminatorBuckets(svc, index);
  return buckets.flatMap((b) => b.nodes).map((n) => ({ id: n.id, status: nodeStatus(n) }));
}

export class ServicesPane {
  constructor(container, emptyNote, onSelectNode) {
    this.container = container;
    this.emptyNote = emptyNote;
    this.rows = new Map();
    this.groups = new Map();
    this.groupOrder = [];
    container.addEventListener('click', (event) => {
      const chip = event.target.closest('[data-node]');
      if (chip) return onSelectNode(chip.dataset.node);
      const stage = event.target.closest('button[data-role]');
      const row = stage && this.rows.get(stage.closest('[data-key]').dataset.key);
      if (!row) return;
      row.open = row.open === stage.dataset.role ? null : stage.dataset.role;
      this.fillRow(row, this.viewOf(row.svc));
    });
  }

  viewOf(svc) {
    const index = this.index;
    const row = this.rows.get(svc.key);
    return {
      svc,
      originate: stageOf([index.originate]),
      relay: svc.relayPort ? stageOf([index.relay]) : null,
      terminate: stageOf(terminatorBuckets(svc, index)),
      diagnostics: this.diagnostics.get(`${svc.namespace}/${svc.name}`) ?? [],
      open: row?.open ?? null,
      members: row?.open ? membersOf(row.open, svc, index) : null,
    };
  }

  /** Applies new state; only rows whose view changed are rebuilt. */
  update(services, nodes, diagnostics) {
    this.index = roleIndex(nodes);
    this.diagnostics = new Map();
    for (const d of diagnostics) {
      if (d.object.kind !== 'Service') continue;
      const key = `${d.object.namespace}/${d.object.name}`;
      if (!this.diagnostics.has(key)) this.diagnostics.set(key, []);
      this.diagnostics.get(key).push({ severity: d.severity, text: d.text });
    }
    this.byKey = new Map(services.map((s) => [s.key, s]));
    // A TCPRoute backend is drawn inside its parent's row (weights on the edges), not as a row of its own.
    const shown = services.filter((s) => !s.via);
    const byNamespace = new Map();
    for (const svc of shown) {
      let row = this.rows.get(svc.key);
      if (!row) {
        row = { el: el('div', 'svc'), sig: '', open: null };
        row.el.dataset.key = svc.key;
        this.rows.set(svc.key, row);
      }
      row.svc = svc;
      const view = this.viewOf(svc);
      const sig = JSON.stringify(view);
      if (sig !== row.sig) this.fillRow(row, view, sig);
      if (!byNamespace.has(svc.namespace)) byNamespace.set(svc.namespace, []);
      byNamespace.get(svc.namespace).push(row);
    }
    for (const [key, row] of this.rows)
      if (!this.byKey.get(key) || this.byKey.get(key).via) {
        row.el.remove();
        this.rows.delete(key);
      }
    const open = shown.length <= 60;
    const namespaces = [...byNamespace.keys()].sort();
    for (const ns of namespaces) {
      let group = this.groups.get(ns);
      if (!group) this.groups.set(ns, (group = makeGroup(ns, open)));
      const rows = byNamespace.get(ns).sort((a, b) => (a.svc.key < b.svc.key ? -1 : 1));
      const keys = rows.map((r) => r.svc.key);
      placeInOrder(
        group.body,
        keys,
        group.keys,
        rows.map((r) => r.el),
      );
      group.keys = keys;
      let status;
      for (const r of rows)
        for (const stage of [r.view.originate, r.view.relay, r.view.terminate])
          status = worse(status, stage?.status ?? undefined);
      setGroupSummary(group, `${rows.length} ${rows.length === 1 ? 'Service port' : 'Service ports'}`, status);
    }
    for (const [ns, group] of this.groups) {
      if (byNamespace.has(ns)) continue;
      group.details.remove();
      this.groups.delete(ns);
    }
    placeInOrder(
      this.container,
      namespaces,
      this.groupOrder,
      namespaces.map((ns) => this.groups.get(ns).details),
    );
    this.groupOrder = namespaces;
    this.emptyNote.hidden = shown.length > 0;
  }

  fillRow(row, view, sig = JSON.stringify(view)) {
    row.sig = sig;
    row.view = view;
    const { svc } = view;
    const head = el('div', 'svc-head');
    head.append(
      el('span', 'svc-name', svc.name),
      el('span', 'mono', `:${svc.port}`),
      el('span', 'tag', svc.mode),
      el('span', 'tag', svc.placement),
    );
    head.append(el('span', 'tag', `tunnel :${svc.tunnelPort}`));
    if (svc.relayPort) head.append(el('span', 'tag', `relay :${svc.relayPort}`));
    head.append(el('span', 'authority', svc.authority));
    const flow = el('div', 'flow');
    flow.append(
      this.stage('originate', 'originator', view.originate, view.open),
      edge(protocolOf[svc.mode] ?? svc.mode),
    );
    if (view.relay)
      flow.append(this.stage('relay', 'relay', view.relay, view.open), edge(protocolOf[svc.mode] ?? svc.mode));
    flow.append(this.stage('terminate', 'terminator', view.terminate, view.open), edge('TCP'), this.backends(svc));
    const parts = [head, flow];
    if (view.members) {
      const members = el('div', 'members');
      if (view.members.length === 0) members.append(el('span', 'empty', 'no connected node of this role'));
      for (const m of view.members) {
        const chip = el('span', `chip ${m.status}`, m.id);
        chip.dataset.node = m.id;
        chip.title = `${m.status}: click for details`;
        members.append(chip);
      }
      parts.push(members);
    }
    if (view.diagnostics.length) {
      const list = el('ul', 'svc-diags');
      for (const d of view.diagnostics) list.append(el('li', d.severity, d.text));
      parts.push(list);
    }
    row.el.className = view.diagnostics.some((d) => d.severity === 'error') ? 'svc broken' : 'svc';
    row.el.replaceChildren(...parts);
  }

  stage(role, what, stage, open) {
    const button = el('button', `stage ${stage.count ? stage.status : 'none'}${open === role ? ' open' : ''}`);
    button.type = 'button';
    button.dataset.role = role;
    const label = stage.count === 1 ? what : `${what}s`;
    button.append(
      el('span', 'n', stage.count),
      el('span', 'what', label),
      el('span', 'st', stage.count ? stage.status : 'none connected'),
    );
    return button;
  }

  backends(svc) {
    const box = el('div', 'backends');
    if (svc.split) {
      const total = svc.split.reduce((sum, s) => sum + s.weight, 0) || 1;
      for (const s of svc.split) {
        const backend = this.byKey.get(s.key);
        const line = el('div', 'backend');
        line.append(el('span', 'weight', `${Math.round((100 * s.weight) / total)}%`));
        if (backend)
          line.append(el('span', 'svc-name', `${backend.name}:${backend.port}`), ...addresses(backend.endpoints, 3));
        else line.append(el('span', 'addr missing', `${s.key}: no such backend, this share fails`));
        box.append(line);
      }
      return box;
    }
    box.append(...addresses(svc.endpoints, 8));
    return box;
  }

  /** Shows only the rows the query matches; groups with a match open while searching. */
  filter(query) {
    for (const group of this.groups.values()) {
      let shown = 0;
      for (const key of group.keys) {
        const row = this.rows.get(key);
        const { svc } = row;
        const hit = matches(
          query,
          svc.key,
          svc.authority,
          ...svc.endpoints.map((e) => e.address),
          ...row.view.diagnostics.map((d) => d.text),
        );
        row.el.hidden = !hit;
        if (hit) shown++;
      }
      group.details.hidden = shown === 0;
      if (query && shown > 0) group.details.open = true;
    }
  }
}
