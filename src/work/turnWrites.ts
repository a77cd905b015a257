/**
 * Writing on a member link (memberLink.ts, http/linkServer.ts): the first write of a turn of
 * the event loop goes at once; what the rest of that turn writes leaves together, in one
 * write, once the turn's callbacks have run (setImmediate) — so forwards or answers that many
 * clients' requests produce together cost one system call and one TCP segment more, not one
 * each, and a lone forward waits for nothing. Never blocks, and never waits for the socket to
 * drain: what is written is bounded by the forwards admitted (MAX_PENDING_WORK) and their
 * answers' limit.
 */
import type { Writable } from 'node:stream';

/** A function that writes its bytes on `socket`, at most two writes per turn of the event loop. */
export function turnWrites(socket: Writable): (bytes: Buffer) => void {
  /** Set while a turn that wrote is not over: what comes then waits for its end. */
  let later: Buffer[] | undefined;
  const endOfTurn = () => {
    const waiting = later!;
    later = undefined;
    if (waiting.length === 1) socket.write(waiting[0]);
    else if (waiting.length > 1) socket.write(Buffer.concat(waiting));
  };
  return (bytes) => {
    if (later !== undefined) {
      later.push(bytes);
      return;
    }
    later = [];
    setImmediate(endOfTurn);
    socket.write(bytes);
  };
}
