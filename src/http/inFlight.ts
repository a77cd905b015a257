/**
 * The requests the member's server has accepted and not finished answering, counted so that
 * graceful shutdown can wait for them to drain.
 */
import type http from 'node:http';

export class InFlightRequests {
  private count = 0;
  private idle: (() => void) | undefined;

  /** How many requests are in flight now. */
  get size(): number {
    return this.count;
  }

  /**
   * Counts a request as in flight until its response closes — or its socket does: answers
   * queued behind others on a pipelined connection never get a socket of their own, so their
   * `close` never comes when the client hangs up.
   */
  track(req: http.IncomingMessage, res: http.ServerResponse): void {
    const end = this.hold();
    const finish = () => {
      res.off('close', finish);
      req.socket.off('close', finish);
      end();
    };
    if (req.socket.destroyed) {
      finish();
      return;
    }
    res.once('close', finish);
    req.socket.once('close', finish);
  }

  /**
   * Counts one request in flight — a forward off a member link, which has no response of its
   * own — until the returned function is called (again: nothing).
   */
  hold(): () => void {
    this.count++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.count--;
      if (this.count === 0) this.idle?.();
    };
  }

  /**
   * Resolves when no request is in flight. Nothing cancels it: shutdown races it against its
   * bound. One waiter at a time (shutdown, which runs once).
   */
  drained(): Promise<void> {
    if (this.count === 0) return Promise.resolve();
    return new Promise((resolve) => (this.idle = resolve));
  }
}
