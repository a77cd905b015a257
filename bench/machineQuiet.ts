/**
 * Waits, before a graceful handover is signalled, until the machine is quiet: a member or a
 * peer's candidate started again by the trial before (a Node process) compiles and loads for
 * a second or more after it answers, on threads of its own, and on two cores that work would
 * be measured as part of whichever system's handover comes next. Every system waits alike,
 * so the handovers compare on an idle machine, as they would on a cluster.
 *
 * Reads Linux's /proc/stat (CPU time of the whole machine in USER_HZ ticks, 10 ms): quiet is
 * at most QUIET_SHARE of all cores busy over one QUIET_WINDOW_MS window. Blocks its caller
 * at most `timeoutMs` (then it goes on, and says it did not get quiet); where /proc/stat
 * cannot be read, it does not wait.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { sleep } from '../src/util/time.js';

/** How long a window is judged, in ms. */
export const QUIET_WINDOW_MS = 100;
/** At most this share of all cores busy in the window (0.1 of two cores: 20 ms in 100). */
export const QUIET_SHARE = 0.1;
/** The longest wait, in ms: past it the trial goes on anyway. */
export const QUIET_TIMEOUT_MS = 5000;

/** The machine's CPU ticks so far: busy and in all, from /proc/stat's first line. */
export interface CpuTicks {
  busy: number;
  total: number;
}

/**
 * /proc/stat's `cpu` line (user nice system idle iowait irq softirq steal …): idle and iowait
 * are not busy; guest time is already counted in user.
 */
export function parseCpuLine(stat: string): CpuTicks {
  const line = stat.split('\n', 1)[0] ?? '';
  const [label, ...fields] = line.trim().split(/\s+/);
  const ticks = fields.slice(0, 8).map(Number);
  if (label !== 'cpu' || ticks.length < 4 || ticks.some((n) => !Number.isFinite(n))) {
    throw new Error(`not a /proc/stat cpu line: ${JSON.stringify(line)}`);
  }
  const total = ticks.reduce((sum, n) => sum + n, 0);
  const idle = ticks[3]! + (ticks[4] ?? 0);
  return { busy: total - idle, total };
}

/** The share of all cores busy between two readings (0 when no tick passed). */
export function busyShare(before: CpuTicks, after: CpuTicks): number {
  const total = after.total - before.total;
  return total <= 0 ? 0 : (after.busy - before.busy) / total;
}

function readTicks(): CpuTicks | undefined {
  try {
    return parseCpuLine(readFileSync('/proc/stat', 'utf8'));
  } catch {
    return undefined;
  }
}

/** Resolves when the machine is quiet, or at `timeoutMs`: whether it was, and after how long. */
export async function machineQuiet(
  timeoutMs = QUIET_TIMEOUT_MS,
): Promise<{ quiet: boolean; waitedMs: number }> {
  const startedAt = performance.now();
  let before = readTicks();
  if (before === undefined) return { quiet: true, waitedMs: 0 };
  for (;;) {
    await sleep(QUIET_WINDOW_MS);
    const after = readTicks()!;
    const waitedMs = performance.now() - startedAt;
    if (busyShare(before, after) <= QUIET_SHARE) return { quiet: true, waitedMs };
    if (waitedMs >= timeoutMs) return { quiet: false, waitedMs };
    before = after;
  }
}
