/**
 * The work handler: what the leader does with a request. It sees the payload and a small
 * context (who it is, the term it runs under, tickets, fenced writes), never the election.
 */
import type { Etcd3, IOperation } from 'etcd3';

/** One work request as the leader's handler receives it. */
export interface WorkRequest {
  payload: unknown;
  /** Member ids the request passed through, ending with the one executing it. */
  via: string[];
}

/** What a handler may use: who runs it, under which term, tickets and fenced writes. */
export interface WorkContext {
  pool: string;
  memberId: string;
  /** The leader term this execution runs under (the fencing token). */
  term: bigint;
  /** The next number of the pool's ticket sequence: unique and increasing across failovers. */
  nextTicket(): Promise<bigint>;
  /** The etcd client, to build operations for `fencedWrite` and to read. */
  etcd: Etcd3;
  /**
   * Runs the operations in one transaction that commits only while this term lasts. Resolves
   * true when committed; false means leadership was lost and nothing was written.
   */
  fencedWrite(...operations: IOperation[]): Promise<boolean>;
}

/**
 * What the leader does with work: called on the leader only, while it leads; what it returns
 * (or resolves to) is the JSON answer of /work on every member, bigints as decimal strings.
 * A thrown `PoolError` becomes its status; anything else thrown is a 500 INTERNAL.
 */
export type WorkHandler = (request: WorkRequest, context: WorkContext) => unknown;

/** The default handler: the Elixir demo's echo, plus a ticket and who did the work. */
export const echoHandler: WorkHandler = async (request, context) => ({
  payload: request.payload,
  ticket: Number(await context.nextTicket()),
  performedBy: context.memberId,
  leader: context.memberId,
  term: Number(context.term),
  via: request.via,
});
