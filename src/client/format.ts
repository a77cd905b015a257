/**
 * One-line and table renderings of member answers, shared by the `status` and `work` commands
 * and the demo's prompt, so all three print the same thing for the same answer.
 */
import type { PoolDescription, WorkAnswer } from './answers.js';
import type { ServiceCallError } from './service.js';

/** `ticket 17 by a (term 3) via b → a`: who did the work, under which term, the route it took. */
export function formatWork(work: WorkAnswer): string {
  const route = work.via.length === 0 ? '' : ` via ${work.via.join(' → ')}`;
  return `ticket ${work.ticket} by ${work.performedBy} (term ${work.term})${route}`;
}

/** `error 503 NO_LEADER: no leader was elected within 5000 ms`, or why nothing answered. */
export function formatFailure(error: ServiceCallError): string {
  if (error.kind !== 'SERVICE_ERROR' || error.answer?.code === undefined) return error.message;
  return `error ${error.answer.status} ${error.answer.code}: ${error.message}`;
}

/** `leader a (term 3)`, or `no leader`. */
export function formatLeader(pool: Pick<PoolDescription, 'leader' | 'term'>): string {
  return pool.leader === null ? 'no leader' : `leader ${pool.leader.id} (term ${pool.term})`;
}

/**
 * Per pool a heading and a table of its members, oldest first, the leader marked `*`:
 *
 *     pool default: leader a (term 3), seen by b at revision 14
 *         ID  URL                    CREATE REV
 *       * a   http://127.0.0.1:8081  8
 *         b   http://127.0.0.1:8082  10
 */
export function formatPools(pools: PoolDescription[]): string {
  if (pools.length === 0) return 'this member belongs to no pool';
  return pools
    .map((pool) => {
      const seenBy = pool.self === undefined ? '' : `, seen by ${pool.self.id}`;
      const heading = `pool ${pool.pool}: ${formatLeader(pool)}${seenBy} at revision ${pool.revision}`;
      if (pool.members.length === 0) return `${heading}\n  no members`;
      const rows = [
        ['', 'ID', 'URL', 'CREATE REV'],
        ...pool.members.map((member) => [
          member.isLeader ? '*' : '',
          member.id,
          member.url,
          String(member.createRevision),
        ]),
      ];
      return [heading, ...table(rows).map((line) => `  ${line}`)].join('\n');
    })
    .join('\n\n');
}

/** Columns padded to their widest cell, two spaces apart; no trailing blanks. */
export function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  }
  return rows.map((row) =>
    row
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd(),
  );
}
