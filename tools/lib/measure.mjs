// Measurements shared by tools/bench and tools/soak: /proc readings of a process, and nearest-rank percentiles.
import { readFileSync } from 'node:fs';

/**
 * Resident set size of a process (`VmRSS` of `/proc/<pid>/status`).
 * @returns {number} bytes, or NaN when the process is gone
 */
export function rssOf(pid) {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/**
 * CPU time (user + system) a process has used, from `/proc/<pid>/stat` (fields 14 and 15 of man 5 proc, in clock
 * ticks of 10 ms).
 * @returns {number} milliseconds, or NaN when the process is gone
 */
export function cpuMsOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

/** Percentile (nearest rank) of an ascending array; NaN when empty. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length - 1e-9); // 99.9 % of 1000 is 999, not 999.0000000000001
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}
