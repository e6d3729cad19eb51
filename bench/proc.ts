// CPU seconds and resident memory of a process, from /proc (Linux).
import fs from 'node:fs';

const ticks = 100; // USER_HZ on Linux

export function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / ticks;
}

export function rssBytes(pid: number): number {
  return statusBytes(pid, 'VmRSS');
}

/** The most the process was ever resident (Linux's high-water mark). */
export function peakRssBytes(pid: number): number {
  return statusBytes(pid, 'VmHWM');
}

function statusBytes(pid: number, field: string): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

/** Resident bytes of the C allocator's main heap (`[heap]` in smaps): what malloc kept, live or not. */
export function mallocHeapBytes(pid: number | 'self'): number {
  const smaps = fs.readFileSync(`/proc/${pid}/smaps`, 'utf8');
  const m = /\[heap\]\n(?:.*\n)*?Rss:\s+(\d+) kB/.exec(smaps);
  return m ? Number(m[1]) * 1024 : 0;
}
