/**
 * What the status page shows, as a tree of elements built from a `StatusSnapshot`. The server
 * writes the tree as HTML for the first paint; the event stream sends the same tree as JSON,
 * and the page's script turns it into DOM nodes (createElement, setAttribute, text nodes —
 * never innerHTML). So the page is laid out in one place, here, and the script stays a
 * generic builder of a few lines.
 *
 * Member ids, URLs and labels come from etcd, where anyone with write access to the prefix
 * may have put them: every value is text or an attribute value, escaped on the way to HTML,
 * and links are made only for http(s) URLs. The tags and attributes the tree may use are
 * listed in viewNode.ts; the page's script refuses anything else.
 */
import { duration, leaderless, leaderStrip, why } from './leaderStrip.js';
import type { StatusSnapshot } from './status.js';
import { h, type ViewNode } from './viewNode.js';

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
