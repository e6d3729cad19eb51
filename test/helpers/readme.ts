// The README's examples as data: its sections, their fenced code blocks, and `$ command` / output
// pairs in console blocks, so tests can run them as written and compare the output by shape.
import fs from 'node:fs';
import path from 'node:path';
import { repo } from './repo.js';

const readme = () => fs.readFileSync(path.join(repo, 'README.md'), 'utf8');

/** The text of the `## title` section, up to the next `## ` heading. */
export function section(title: string): string {
  const text = readme();
  const start = text.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`README has no section "## ${title}"`);
  const end = text.indexOf('\n## ', start + 1);
  return text.slice(start, end < 0 ? undefined : end);
}

/** The fenced code blocks of a language (sh, console, yaml) in `text`, in order. */
export function codeBlocks(text: string, lang: string): string[] {
  return [...text.matchAll(new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``, 'g'))].map((m) => m[1]!);
}

/** The command lines of an sh block: comments after `#` and a trailing `&` removed, empty lines dropped. */
export function commands(block: string): string[] {
  return block
    .split('\n')
    .map((line) =>
      line
        .replace(/\s+#\s.*$/, '')
        .replace(/\s*&\s*$/, '')
        .trim(),
    )
    .filter((line) => line && !line.startsWith('#'));
}

/** A console block's `$ command` lines, each with the output lines printed under it. */
export function consoleExamples(block: string): { command: string; output: string }[] {
  const out: { command: string; output: string[] }[] = [];
  for (const line of block.replace(/\n$/, '').split('\n')) {
    if (line.startsWith('$ ')) out.push({ command: line.slice(2).replace(/\s+#\s.*$/, ''), output: [] });
    else out.at(-1)?.output.push(line);
  }
  return out.map((e) => ({ command: e.command, output: `${e.output.join('\n').trim()}\n` }));
}

/** Splits a simple shell command line into words (single and double quotes, no expansions). */
export function words(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/'([^']*)'|"((?:\\.|[^"\\])*)"|(\S+)/g))
    out.push(m[1] ?? m[2]?.replace(/\\(["\\$`])/g, '$1') ?? m[3]!);
  return out;
}

/** Output shape: hashes masked, runs of spaces (table padding) collapsed, trailing spaces dropped. */
export function shape(text: string): string {
  return text
    .split('\n')
    .map((l) =>
      l
        .replace(/\b[0-9a-f]{8}\b/g, 'HASH')
        .replace(/ {2,}/g, '  ')
        .trimEnd(),
    )
    .join('\n')
    .trim();
}
