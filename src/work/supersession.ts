/**
 * When to give up on forwards to a leader that was replaced: another member's claim is seen
 * while forwards to the old leader are in flight, and the old leader still has not answered
 * them a grace period later — it is frozen or cut off (a leader merely handing over answers
 * well within the grace). The router abandons them then (502, as they may have executed)
 * instead of letting them hang until the forward timeout.
 *
 * One abort signal per leader term, shared by every forward to it, and one listener on the
 * election for the router's life: nothing per forward but a map lookup.
 */
import { setMaxListeners, type EventEmitter } from 'node:events';

/** What it reads of the election: the claim's term, and its changes. */
export interface ClaimTerms extends Pick<EventEmitter, 'on'> {
  leader(): { term: bigint } | undefined;
}

export class Supersession {
  /** Terms forwarded to and not yet superseded, with the signal their forwards share. */
  private readonly terms = new Map<bigint, AbortController>();

  /**
   * @param graceMs how long forwards to a superseded leader may still take (ms).
   */
  constructor(
    private readonly election: ClaimTerms,
    private readonly graceMs: number,
  ) {
    election.on('change', () => this.check());
  }

  /**
   * The signal that aborts `graceMs` after a newer claim than `term` is seen; undefined for
   * term 0 (unknown: never abandoned).
   */
  of(term: bigint): AbortSignal | undefined {
    if (term === 0n) return undefined;
    let controller = this.terms.get(term);
    if (controller === undefined) {
      controller = new AbortController();
      // Every forward in flight to the term listens: as many as MAX_PENDING_WORK.
      setMaxListeners(0, controller.signal);
      this.terms.set(term, controller);
      this.check();
    }
    return controller.signal;
  }

  private check(): void {
    const current = this.election.leader()?.term;
    if (current === undefined) return;
    for (const [term, controller] of this.terms) {
      if (term >= current) continue;
      this.terms.delete(term);
      setTimeout(() => controller.abort(), this.graceMs).unref();
    }
  }
}
