/**
 * What the peer benchmark (bench/peer.ts) waits on: the watch's puts and deletes, the
 * observer's changes and the candidates' stdout lines (a campaign elected, a lease renewed, a
 * resign), each stamped on arrival with this process's monotonic clock (`performance.now()`,
 * ms).
 *
 * What blocks: `waitFor`, until a matching event arrives, `timeoutMs` (ms) pass, or the process
 * that would send it has exited.
 */

/**
 * Timestamped events of one kind, and a wait for the first that matches: trials wait on events
 * (a watch, an observer, a stdout line) with a bound, never on a sleep.
 */
export class Timeline<T extends { at: number }> {
  private readonly entries: T[] = [];
  private readonly listeners = new Set<() => void>();

  push(entry: T): void {
    this.entries.push(entry);
    for (const listener of [...this.listeners]) listener();
  }

  find(match: (entry: T) => boolean): T | undefined {
    return this.entries.find(match);
  }

  /** The latest entry that matches. */
  findLast(match: (entry: T) => boolean): T | undefined {
    return this.entries.findLast(match);
  }

  /** The first entry that matches, as soon as there is one; undefined after `timeoutMs`. */
  waitFor(
    match: (entry: T) => boolean,
    timeoutMs: number,
    abandon?: Promise<unknown>,
  ): Promise<T | undefined> {
    return new Promise((resolve) => {
      const finish = (entry: T | undefined) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        resolve(entry);
      };
      const check = () => {
        const entry = this.find(match);
        if (entry !== undefined) finish(entry);
      };
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      this.listeners.add(check);
      // A candidate that exits before its event will never send it.
      void abandon?.then(() => finish(this.find(match)));
      check();
    });
  }
}

export interface ValueEvent {
  at: number;
  value: string | undefined;
}

/** A candidate's lease renewed: `renewedAt` is when its answered keep-alive was sent (ms). */
export interface RenewalEvent extends ValueEvent {
  renewedAt: number;
}
