/**
 * What the status page shows, as a tree of elements built from a `StatusSnapshot`. The server
 * writes the tree as HTML for the first paint; the event stream sends the same tree as JSON,
 * and the page's script turns it into DOM nodes (createElement, setAttribute, text nodes —
 * never innerHTML). So the page is laid out in one place, here, and the script stays a
 * generic builder of a few lines.
 *
 * Member ids, URLs and labels come from etcd, where anyone with write access to the prefix
 * may have put them: every value is text or an attribute value, escaped on the way to HTML,
 * and links are made only for http(s) URLs. The tags and attributes the tree may use are the
 * two lists below; the page's script refuses anything else.
 */
import type { StatusSnapshot } from './status.js';

export const VIEW_TAGS = [
  'section',
  'h2',
  'h3',
  'p',
  'strong',
  'span',
  'code',
  'time',
  'a',
  'div',
  'ul',
  'li',
  'table',
  'caption',
  'thead',
  'tbody',
  'tr',
  'th',
  'td',
  // The leader timeline strip (inline SVG; the page's script creates these in SVG's namespace).
  'svg',
  'g',
  'rect',
  'text',
  'title',
] as const;

/** The tags that belong to SVG's namespace, not HTML's. */
export const SVG_TAGS: readonly ViewTag[] = ['svg', 'g', 'rect', 'text', 'title'];

export const VIEW_ATTRIBUTES = [
  'id',
  'class',
  'href',
  'scope',
  'colspan',
  'datetime',
  'role',
  'tabindex',
  'aria-labelledby',
  'data-pool',
  'data-summary',
  'data-member',
  'aria-label',
  'viewBox',
  'x',
  'y',
  'width',
  'height',
  'text-anchor',
] as const;

export type ViewTag = (typeof VIEW_TAGS)[number];
export type ViewAttributes = Partial<Record<(typeof VIEW_ATTRIBUTES)[number], string>>;
/** An element as `[tag, attributes, ...children]`, or a text node. */
export type ViewNode = string | [ViewTag, ViewAttributes, ...ViewNode[]];

/** What the page's script receives in an `event: view`. */
export interface StatusView {
  title: string;
  /**
   * Which process sent it (member id and start time). When it is another one than before (the
   * member restarted, or a load balancer sent the stream elsewhere), the page replaces its
   * header with `servedBy`; the sections are the new process's anyway.
   */
  process: string;
  servedBy: ViewNode;
  /** The sections of the page's live region, each with a stable `id`. */
  sections: ViewNode[];
}

type PoolStatus = StatusSnapshot['pools'][number];

const h = (tag: ViewTag, attributes: ViewAttributes, ...children: ViewNode[]): ViewNode => [
  tag,
  attributes,
  ...children,
];

export function statusView(snapshot: StatusSnapshot): StatusView {
  const leaders = snapshot.pools.map((pool) => `${pool.pool}: ${pool.leader?.id ?? 'no leader'}`);
  return {
    title: `${leaders.join(', ')} — service-pool-leader`,
    process: `${snapshot.member.id} ${snapshot.member.startedAt}`,
    servedBy: servedBy(snapshot.member),
    sections: [
      ...snapshot.pools.map((pool) => poolSection(pool, snapshot.takenAt)),
      costSection(snapshot),
    ],
  };
}

/** "Served by member c at http://…, version …, started …", for the page's header. */
export function servedBy(member: StatusSnapshot['member']): ViewNode {
  return h(
    'p',
    { id: 'served-by' },
    'Served by member ',
    h('strong', { class: 'self-id' }, member.id),
    ' at ',
    link(member.url),
    `, version ${member.version}, started `,
    time(member.startedAt),
    '.',
  );
}

/** One line per pool that changes exactly when its leader or term does; announced then. */
function leaderSummary(pool: PoolStatus): string {
  return pool.leader
    ? `Pool ${pool.pool}: the leader is ${pool.leader.id}, term ${pool.leader.term}.`
    : `Pool ${pool.pool} has no leader.`;
}

function poolSection(pool: PoolStatus, takenAt: string): ViewNode {
  const id = `pool-${pool.pool}`;
  const self = pool.self;
  const leader = pool.leader;
  return h(
    'section',
    {
      id,
      class: 'pool',
      'aria-labelledby': `${id}-heading`,
      'data-pool': pool.pool,
      'data-summary': leaderSummary(pool),
    },
    h('h2', { id: `${id}-heading` }, 'Pool ', h('code', {}, pool.pool)),
    leader
      ? h(
          'p',
          { class: 'leader' },
          'Leader: ',
          h('strong', { class: 'leader-id' }, leader.id),
          ...(leader.memberKey === self.memberKey ? [' ', badge('this member')] : []),
          ', term ',
          h('strong', { class: 'term' }, String(leader.term)),
        )
      : h(
          'p',
          { class: 'leader no-leader' },
          h('strong', {}, 'No leader'),
          pool.noLeaderReason === null ? ' right now.' : `: ${pool.noLeaderReason}.`,
        ),
    h(
      'p',
      {},
      `This member is ${self.isLeader ? 'the leader' : self.candidate ? 'a follower' : 'a follower that never leads (CANDIDATE=false)'} and `,
      self.ready ? 'ready.' : h('strong', {}, 'not ready.'),
    ),
    table(
      `${id}-members`,
      `Members of ${pool.pool}, oldest first`,
      ['Member', 'URL', 'Started', 'Create revision', 'Weight', 'Labels', 'Role'],
      pool.members.map((member) => {
        const isSelf = member.memberKey === self.memberKey;
        return {
          class: member.isLeader ? 'is-leader' : '',
          header: [member.id, ...(isSelf ? [' ', badge('this member')] : [])],
          cells: [
            [link(member.url, member.id)],
            [time(member.startedAt)],
            [String(member.createRevision)],
            [String(member.weight)],
            [labelList(member.labels)],
            [
              member.isLeader
                ? badge('leader', 'leader-mark')
                : member.candidate
                  ? 'follower'
                  : 'never leads',
            ],
          ],
        };
      }),
    ),
    leaderStrip(`${id}-strip`, pool.pool, pool.timeline, takenAt),
    table(
      `${id}-changes`,
      `Leader changes this member saw in ${pool.pool}, newest first`,
      ['Time', 'Leader', 'Term', 'Why', 'Without a claim', 'Outage'],
      [...pool.timeline].reverse().map((change) => ({
        class: change.leader === null ? 'no-leader' : '',
        header: [time(change.at)],
        cells: [
          [change.leader ?? 'no leader'],
          [change.term === null ? '–' : String(change.term)],
          [why(change)],
          [leaderless(change)],
          [change.outageMs === null ? '–' : duration(change.outageMs)],
        ],
      })),
    ),
  );
}

/** The etcd requests and work calls of this member: what /simple-work costs over /work. */
function costSection(snapshot: StatusSnapshot): ViewNode {
  const counts = (totals: Record<string, number>) =>
    Object.entries(totals)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, count]) => ({ header: [name], cells: [[String(count)]] }));
  return h(
    'section',
    { id: 'cost', 'aria-labelledby': 'cost-heading' },
    h('h2', { id: 'cost-heading' }, 'What work costs in etcd'),
    h(
      'p',
      {},
      h('code', {}, '/work'),
      ' decides from the pool as this member watches it: no etcd request per call. ',
      h('code', {}, '/simple-work'),
      ' reads the members from etcd on every call. Counted on this member since it started.',
    ),
    table(
      'cost-work',
      'Work calls served, and the etcd requests sent while serving them, by route',
      ['Route', 'Calls', 'etcd requests'],
      Object.keys({ ...snapshot.workCalls, ...snapshot.workEtcdRequests })
        .sort()
        .map((route) => ({
          header: [route],
          cells: [
            [String(snapshot.workCalls[route] ?? 0)],
            [String(snapshot.workEtcdRequests[route] ?? 0)],
          ],
        })),
    ),
    table(
      'cost-etcd',
      'All etcd requests sent, by operation: the above and the background (registration, lease keep-alives, the watch, reconciling reads, claims)',
      ['Operation', 'Requests'],
      counts(snapshot.etcdRequests),
    ),
  );
}

interface Row {
  class?: string;
  /** The row's header cell (`<th scope="row">`). */
  header: ViewNode[];
  cells: ViewNode[][];
}

/**
 * A captioned table with column and row headers, in a container that scrolls sideways on a
 * narrow screen instead of widening the page; focusable, so a keyboard can scroll it.
 */
function table(id: string, caption: string, columns: string[], rows: Row[]): ViewNode {
  const captionId = `${id}-caption`;
  return h(
    'div',
    { class: 'scroll', role: 'region', tabindex: '0', 'aria-labelledby': captionId },
    h(
      'table',
      { id },
      h('caption', { id: captionId }, caption),
      h('thead', {}, h('tr', {}, ...columns.map((column) => h('th', { scope: 'col' }, column)))),
      h(
        'tbody',
        {},
        ...(rows.length === 0
          ? [h('tr', {}, h('td', { class: 'empty', colspan: String(columns.length) }, 'none yet'))]
          : rows.map((row) =>
              h(
                'tr',
                row.class ? { class: row.class } : {},
                h('th', { scope: 'row' }, ...row.header),
                ...row.cells.map((cell) => h('td', {}, ...cell)),
              ),
            )),
      ),
    ),
  );
}

type Change = PoolStatus['timeline'][number];

/** What each cause of a claim's end means to a person (election/failover.ts). */
const CAUSES: Record<NonNullable<Change['cause']>, string> = {
  stop: 'graceful stop',
  resign: 'resigned',
  handover: 'handed over to a preferred member',
  expired: 'lease expired: crashed, frozen or cut off from etcd',
  unknown: 'claim deleted',
};

/** Why the leader changed: the cause of the previous claim's end, or how we met the leader. */
function why(change: Change): string {
  if (change.cause !== null) return CAUSES[change.cause];
  if (change.leader !== null && change.previous === null) return 'leading when this member started';
  return '–';
}

/** The leaderless gap before a change; "–" where there is none to speak of. */
function leaderless(change: Change): string {
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
function leaderStrip(
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

function badge(text: string, kind = 'self-mark'): ViewNode {
  return h('span', { class: `badge ${kind}` }, text);
}

/**
 * A link for an http(s) URL; anything else (it came from etcd) is shown as text. A member's
 * link carries its id: when this page's stream drops, its script offers the other members'
 * pages.
 */
function link(url: string, member?: string): ViewNode {
  let protocol = '';
  try {
    protocol = new URL(url).protocol;
  } catch {
    // Not a URL: shown as text below.
  }
  if (protocol !== 'http:' && protocol !== 'https:') return url;
  return h('a', member === undefined ? { href: url } : { href: url, 'data-member': member }, url);
}

/** An ISO time as "2025-01-31 12:00:00.123 UTC" in a <time>; anything else as text. */
function time(iso: string): ViewNode {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const text = date.toISOString().replace('T', ' ').replace('Z', ' UTC');
  return h('time', { datetime: date.toISOString() }, text);
}

function labelList(labels: Record<string, string>): ViewNode {
  const entries = Object.entries(labels);
  if (entries.length === 0) return 'none';
  return h(
    'ul',
    { class: 'labels' },
    ...entries.map(([key, value]) => h('li', {}, h('code', {}, `${key}=${value}`))),
  );
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ESCAPES[char]!);
}

/** The tree as HTML, every text and attribute value escaped. */
export function toHtml(node: ViewNode): string {
  if (typeof node === 'string') return escapeHtml(node);
  const [tag, attributes, ...children] = node;
  const attributeText = Object.entries(attributes)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => ` ${name}="${escapeHtml(value)}"`)
    .join('');
  return `<${tag}${attributeText}>${children.map(toHtml).join('')}</${tag}>`;
}
