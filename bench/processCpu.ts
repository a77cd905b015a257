/**
 * CPU time of local processes, from Linux's /proc/<pid>/stat (user + system time of every
 * thread of the process): what the throughput benchmark charges a hop per request it passed.
 *
 * Units: ms of CPU; /proc counts in clock ticks (CLK_TCK, 100 per second on Linux), so one
 * reading is exact to 10 ms — over a run of thousands of requests that is microseconds per
 * request. Nothing here blocks but a synchronous read of a small /proc file per process.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Linux's USER_HZ: the unit of utime and stime in /proc/<pid>/stat. */
const TICKS_PER_SECOND = 100;

/**
 * The fields of /proc/<pid>/stat after the command name, which is in parentheses and may hold
 * spaces: field 3 (state) is the first of them.
 */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** User + system CPU time `pid` has used so far, in ms. */
export function cpuMs(pid: number): number {
  const fields = statFields(pid);
  // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
  return ((Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND) * 1000;
}

/** The sum of `cpuMs` over `pids`. */
export function totalCpuMs(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + cpuMs(pid), 0);
}

/** The processes whose parent is `pid` (e.g. nginx's workers under its master). */
export function childPids(pid: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((child) => {
      try {
        // Field 4, the parent's pid, is the second after the name.
        return Number(statFields(child)[1]) === pid;
      } catch {
        return false; // it exited while we looked
      }
    });
}
