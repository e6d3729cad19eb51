// The one table `make bench` prints: a row per scenario and figure, with the figure measured with the
// server pinned to its own core and with every process sharing the cores, side by side, its goal and
// whether it was met. Steps run one at a time, each bounded in time; a step that fails or overruns
// leaves a `failed: <reason>` row, its processes are killed, and the next step runs.
import { killAll, useCores, type Cores } from './child.js';

interface Row {
  scenario: string;
  figure: string;
  goal: string;
  values: Partial<Record<Cores, { value: string; pass?: boolean }>>;
}

const rows: Row[] = [];
let current: Cores = 'shared';

export const log = (s: string) => process.stderr.write(`bench: ${s}\n`);
export const ms = (x: number) => (Number.isFinite(x) ? `${x.toFixed(0)} ms` : 'n/a');
export const mb = (x: number) => `${(x / 1e6).toFixed(0)} MB`;

/** One figure of the step that runs now (in the current cores mode); `pass` undefined: reported, no goal. */
export function row(scenario: string, figure: string, value: string, goal = 'report', pass?: boolean): void {
  let r = rows.find((x) => x.scenario === scenario && x.figure === figure);
  if (!r) rows.push((r = { scenario, figure, goal, values: {} }));
  r.values[current] = { value, pass };
  // Also as it happens, so a run cut short still shows what it measured.
  log(`| ${current} | ${scenario} | ${figure} | ${value} | ${goal} | ${verdict(pass)} |`);
}

const verdict = (pass?: boolean) => (pass === undefined ? '' : pass ? 'met' : 'MISSED');

function reason(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0]!.slice(0, 160);
}

/** Runs a step in each cores mode, each within `budgetMs`; a failure becomes the step's row. */
export async function step(
  name: string,
  modes: Cores[],
  budgetMs: number,
  body: (mode: Cores) => Promise<void>,
): Promise<void> {
  for (const mode of modes) {
    current = mode;
    useCores(mode);
    log(`${name} (${mode} cores): start`);
    let timer: NodeJS.Timeout | undefined;
    const overrun = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`did not finish within ${budgetMs / 60_000} min`)), budgetMs);
    });
    try {
      await Promise.race([body(mode), overrun]);
    } catch (err) {
      log(`${name} (${mode} cores) failed: ${err instanceof Error ? err.stack : err}`);
      row(name, 'the step', `failed: ${reason(err)}`, '', false);
      await killAll();
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The table: figure per cores mode side by side, then the goal and met/MISSED (pinned / shared). */
export function printTable(modes: Cores[]): void {
  const head = [
    'scenario',
    'figure',
    ...modes.map((m) => (m === 'pinned' ? 'pinned (shim core 0)' : 'shared cores')),
    'goal',
    '',
  ];
  const lines = rows.map((r) => [
    r.scenario,
    r.figure,
    ...modes.map((m) => r.values[m]?.value ?? '-'),
    r.goal,
    modes
      .map((m) => verdict(r.values[m]?.pass))
      .filter(Boolean)
      .join(' / '),
  ]);
  const widths = head.map((_, i) => Math.max(...[head, ...lines].map((l) => l[i]!.length)));
  const line = (l: string[]) => `| ${l.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(line(head));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const l of lines) console.log(line(l));
}
