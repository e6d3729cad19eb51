// Prints where a `node --cpu-prof` profile spent its time: self time per function, top 20, time
// including callees (top 25: what a function and everything it called cost), and per file group.
// Usage: npx tsx bench/profile-top.ts bench/profiles/FILE.cpuprofile [--under FUNCTION]; --under also
// splits the time spent inside FUNCTION by what it called (its direct callees, and its own time).
import fs from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

const profile = JSON.parse(fs.readFileSync(process.argv[2]!, 'utf8')) as {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
};
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const urlOf = (n: Node) =>
  n.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(src|bench)\//, '$1/');
const keyOf = (n: Node) => `${n.callFrame.functionName || '(anonymous)'} ${urlOf(n)}:${n.callFrame.lineNumber + 1}`;
const self = new Map<string, number>();
const inclusive = new Map<string, number>();
const group = new Map<string, number>();
const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
const underIndex = process.argv.indexOf('--under');
const under = underIndex > 0 ? process.argv[underIndex + 1] : undefined;
const beneath = new Map<string, number>();
let total = 0;
profile.samples.forEach((id, i) => {
  const n = byId.get(id)!;
  const dt = profile.timeDeltas[i] ?? 0;
  total += dt;
  const url = urlOf(n);
  add(self, keyOf(n), dt);
  // Each function once per sample, however deep it recursed.
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) seen.add(keyOf(byId.get(at)!));
  for (const k of seen) add(inclusive, k, dt);
  if (under) {
    // The outermost frame named `under`, and the frame it called on the way to this sample.
    let callee: Node | undefined;
    let found: Node | undefined;
    for (let at: number | undefined = id, below: Node | undefined; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!;
      if (frame.callFrame.functionName === under) [found, callee] = [frame, below];
      below = frame;
    }
    if (found) add(beneath, callee ? keyOf(callee) : '(self)', dt);
  }
  const g =
    url.startsWith('src/') || url.startsWith('bench/')
      ? url.split('/').slice(0, 2).join('/')
      : url.split('/')[0] || n.callFrame.functionName;
  add(group, g, dt);
});
const pct = (x: number) => `${((100 * x) / total).toFixed(1)}%`;
const top = (m: Map<string, number>, count: number, skip = (_k: string) => false) => {
  const rows = [...m].filter(([k]) => !skip(k)).sort((a, b) => b[1] - a[1]);
  for (const [k, v] of rows.slice(0, count)) console.log(`${pct(v).padStart(6)}  ${k}`);
};
console.log(`total ${(total / 1e6).toFixed(1)} s sampled`);
top(self, 20);
console.log('-- including callees');
top(inclusive, 25, (k) => k.startsWith('(root)') || k.startsWith('(anonymous) :0'));
console.log('-- by module');
top(group, 12);
if (under) {
  console.log(`-- inside ${under}, by what it called`);
  top(beneath, 15);
}
