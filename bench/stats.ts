import { readdirSync, readFileSync } from 'node:fs';

/**
 * Small statistics helpers for benchmarks: medians, not means, because loopback timings have outliers.
 * Throws on no values or one that is not a number (a time read from a record that was not there):
 * sorting compares NaN as neither smaller nor larger, so the median of a list holding one is some
 * other value, printed as if measured; and the median of none would be written as null.
 */
export function median(xs: number[]): number {
  if (xs.length === 0) throw new Error('median of no values: nothing was measured');
  const bad = xs.find((x) => !Number.isFinite(x));
  if (bad !== undefined) throw new Error(`median of [${xs.join(', ')}]: ${bad} is no measure`);
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export const now = () => performance.now();

/**
 * CPU time (user + system) a process has used so far, and that of the children
 * it has waited for, from /proc (Linux; clock ticks of 10 ms). The process name
 * may hold spaces: the fields are counted from its closing parenthesis.
 */
export function cpuTimes(pid: number): { ownMs: number; childrenMs: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  const ticks = (a: number, b: number) => ((fields[a] ?? 0) + (fields[b] ?? 0)) * 10;
  return { ownMs: ticks(11, 12), childrenMs: ticks(13, 14) };
}

/** Resident memory of a process, from /proc (Linux). */
export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

/** The processes a process has started and that still run (any of its threads may start one), from /proc (Linux). */
export function childPids(pid: number): number[] {
  const pids = readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
    readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number),
  );
  return [...new Set(pids)];
}
