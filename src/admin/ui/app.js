// The live topology page: the shim's state from /ui/events (server-sent events; each part arrives when
// it changed), rendered at most once per animation frame, and only the rows that changed.
import { nodeStatus } from './dom.js';
import { NodesPane, renderDetails, renderDiagnostics } from './nodes.js';
import { ServicesPane } from './services.js';

const $ = (id) => document.getElementById(id);
const state = { services: [], nodes: [], diagnostics: [] };
const raw = { services: '', nodes: '', diagnostics: '' };
const changed = new Set();
let query = '';
let selected = null;

const services = new ServicesPane($('services'), $('no-services'), select);
const nodes = new NodesPane($('nodes'), $('no-nodes'), select);

function select(id) {
  selected = id;
  nodes.select(id);
  $('details-pane').hidden = false;
  showDetails();
}

function showDetails() {
  if (selected === null) return;
  renderDetails(
    $('details'),
    state.nodes.find((n) => n.id === selected),
    selected,
  );
}

$('close-details').addEventListener('click', () => {
  selected = null;
  nodes.select(null);
  $('details-pane').hidden = true;
});

function render() {
  if (changed.has('services') || changed.has('nodes') || changed.has('diagnostics')) {
    services.update(state.services, state.nodes, state.diagnostics);
    services.filter(query);
  }
  if (changed.has('nodes')) {
    nodes.update(state.nodes);
    nodes.filter(query);
    showDetails();
  }
  if (changed.has('diagnostics'))
    renderDiagnostics($('diagnostics'), $('no-diagnostics'), $('diag-count'), state.diagnostics, query);
  changed.clear();
  const nacked = state.nodes.filter((n) => nodeStatus(n) === 'NACKED').length;
  const namespaces = new Set(state.services.map((s) => s.namespace)).size;
  $('counts').textContent =
    `${state.services.length} Service ports in ${namespaces} namespaces · ${state.nodes.length} nodes` +
    (nacked ? ` · ${nacked} NACKED` : '');
  $('node-count').textContent = String(state.nodes.length);
}

function schedule(part) {
  if (changed.size === 0) requestAnimationFrame(render);
  changed.add(part);
}

let searchTimer;
$('search').addEventListener('input', (event) => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    query = event.target.value.trim().toLowerCase();
    services.filter(query);
    nodes.filter(query);
    renderDiagnostics($('diagnostics'), $('no-diagnostics'), $('diag-count'), state.diagnostics, query);
  }, 120);
});

function setLive(on) {
  $('live').textContent = on ? 'live' : 'reconnecting';
  $('live').className = on ? 'live' : 'live off';
}

// EventSource reconnects by itself; the shim sends every part again on each new connection.
const events = new EventSource('/ui/events');
for (const part of ['services', 'nodes', 'diagnostics']) {
  events.addEventListener(part, (event) => {
    if (event.data === raw[part]) return;
    raw[part] = event.data;
    state[part] = JSON.parse(event.data);
    schedule(part);
  });
}
events.addEventListener('open', () => setLive(true));
events.addEventListener('error', () => setLive(false));
