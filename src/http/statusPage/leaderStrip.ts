/**
 * The leader changes as a person reads them: why each happened (election/failover.ts), the
 * durations in words, and the strip that draws who led when, to scale, as SVG. Pure: a
 * function of the timeline and the snapshot's time; nothing blocks.
 */
import type { StatusSnapshot } from './status.js';
import { h, type ViewNode } from './viewNode.js';

type PoolStatus = StatusSnapshot['pools'][number];
export type Change = PoolStatus['timeline'][number];

/** What each cause of a claim's end means to a person (election/failover.ts). */
const CAUSES: Record<NonNullable<Change['cause']>, string> = {
  stop: 'graceful stop',
  resign: 'resigned',
  handover: 'handed over to a preferred member',
  expired: 'lease expired: crashed, frozen or cut off from etcd',
  unknown: 'claim deleted',
};

/** Why the leader changed: the cause of the previous claim's end, or how we met the leader. */
export function why(change: Change): string {
  if (change.cause !== null) return CAUSES[change.cause];
  if (change.leader !== null && change.previous === null) return 'leading when this member started';
  return '–';
}

/** The leaderless gap before a change; "–" where there is none to speak of. */
export function leaderless(change: Change): string {
  if (change.leaderlessMs !== null) return duration(change.leaderlessMs);
  // A leader seen first (on joining), or a change straight from one leader to the next.
  return change.leader === null || change.previous === null ? '–' : 'no gap';
}

/** Milliseconds as "13 ms", "5.02 s", "3 min 5 s". */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

const STRIP_WIDTH = 720;
const STRIP_BAR = { y: 4, height: 22 };
/** Brief spans are drawn this wide at least (viewBox units), so a 10 ms gap is visible. */
const STRIP_MIN_WIDTH = 2;
const STRIP_COLOURS = 6;

/**
 * Who led when, to scale, from the first change this member saw to `takenAt`: one bar per
 * leader, leaderless gaps and each failover's outage (from the old leader's last sign of life)
 * marked, a tooltip (`<title>`) on each. Server-rendered SVG; the table below says the same
 * in words for a screen reader.
 */
export function leaderStrip(
  id: string,
  pool: string,
  timeline: readonly Change[],
  takenAt: string,
): ViewNode {
  const end = Date.parse(takenAt);
  const changes = timeline
    .map((change) => ({ change, at: Date.parse(change.at) }))
    .filter(({ at }) => Number.isFinite(at) && at <= end);
  if (changes.length === 0 || !Number.isFinite(end)) return h('p', { id, class: 'strip-empty' });
  const outageStart = (entry: (typeof changes)[number]) => entry.at - (entry.change.outageMs ?? 0);
  const start = Math.min(...changes.map(outageStart));
  const span = Math.max(end - start, 1);
  const x = (at: number) => ((at - start) / span) * STRIP_WIDTH;
  const colours = new Map<string, number>();
  const colour = (leader: string) => {
    if (!colours.has(leader)) colours.set(leader, colours.size % STRIP_COLOURS);
    return colours.get(leader)!;
  };
  const bars: ViewNode[] = [];
  const marks: ViewNode[] = [];
  const labels: ViewNode[] = [];
  changes.forEach((entry, i) => {
    const until = changes[i + 1]?.at ?? end;
    const from = x(entry.at);
    const width = Math.max(x(until) - from, STRIP_MIN_WIDTH);
    const { change } = entry;
    const lasted = duration(until - entry.at);
    if (change.leader === null) {
      marks.push(rect('gap', from, width, `no leader for ${lasted} (${why(change)})`));
    } else {
      const now = i === changes.length - 1 ? ', leading now' : '';
      const tip = `${change.leader} led, term ${change.term}, for ${lasted}${now}`;
      bars.push(rect(`lead-${colour(change.leader)}`, from, width, tip));
      // An id is written inside its bar only where it fits (about 8 units per character).
      if (width >= change.leader.length * 8 + 8) {
        labels.push(
          h('text', { x: fixed(from + 4), y: '20', class: 'strip-label' }, change.leader),
        );
      }
    }
    if (change.outageMs !== null && change.outageMs > 0) {
      const outageFrom = x(outageStart(entry));
      const tip = `outage ${duration(change.outageMs)} before ${change.leader ?? 'the next leader'} led (${why(change)})`;
      marks.push(rect('outage', outageFrom, Math.max(from - outageFrom, STRIP_MIN_WIDTH), tip));
    }
  });
  const leaders = changes
    .filter(({ change }) => change.leader !== null)
    .map(({ change }) => change.leader);
  return h(
    'div',
    { class: 'strip', id },
    h(
      'svg',
      {
        viewBox: `0 0 ${STRIP_WIDTH} 44`,
        role: 'img',
        'aria-label': `Who led pool ${pool} from ${clock(start)} to ${clock(end)}: ${leaders.join(', then ')}. Outages are marked red; details in the table below.`,
      },
      h('g', {}, ...bars),
      h('g', {}, ...marks),
      h('g', {}, ...labels),
      h('text', { x: '0', y: '40', class: 'strip-axis' }, clock(start)),
      h(
        'text',
        { x: String(STRIP_WIDTH), y: '40', class: 'strip-axis', 'text-anchor': 'end' },
        `${clock(end)} (now)`,
      ),
    ),
    h(
      'p',
      { class: 'strip-legend' },
      'Bars: who led. Red: an outage, from the old leader\u2019s last sign of life to the next leader. Orange: no leader claim.',
    ),
  );
}

function rect(kind: string, x: number, width: number, tip: string): ViewNode {
  return h(
    'rect',
    {
      class: kind,
      x: fixed(x),
      y: String(STRIP_BAR.y),
      width: fixed(width),
      height: String(STRIP_BAR.height),
    },
    h('title', {}, tip),
  );
}

const fixed = (value: number) => value.toFixed(1);

/** "12:00:05 UTC". */
function clock(at: number): string {
  return new Date(at).toISOString().slice(11, 19) + ' UTC';
}
