// Prints where a `node --cpu-prof` profile spent its time: self time per function, top 20, and per
// file group. Usage: npx tsx bench/profile-top.ts bench/profiles/FILE.cpuprofile
import fs from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

const profile = JSON.parse(fs.readFileSync(process.argv[2]!, 'utf8')) as {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
};
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map<string, number>();
const group = new Map<string, number>();
let total = 0;
profile.samples.forEach((id, i) => {
  const n = byId.get(id)!;
  const dt = profile.timeDeltas[i] ?? 0;
  total += dt;
  const url = n.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(src|bench)\//, '$1/');
  const key = `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + dt);
  const g =
    url.startsWith('src/') || url.startsWith('bench/')
      ? url.split('/').slice(0, 2).join('/')
      : url.split('/')[0] || n.callFrame.functionName;
  group.set(g, (group.get(g) ?? 0) + dt);
});
const pct = (x: number) => `${((100 * x) / total).toFixed(1)}%`;
console.log(`total ${(total / 1e6).toFixed(1)} s sampled`);
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`${pct(v).padStart(6)}  ${k}`);
console.log('-- by module');
for (const [k, v] of [...group].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`${pct(v).padStart(6)}  ${k}`);
