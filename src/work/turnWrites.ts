/**
 * Writing on a member link (memberLink.ts, http/linkServer.ts): what one turn of the event
 * loop writes leaves in one write — the socket is corked at the first write of a turn and
 * uncorked once the turn's callbacks have run (setImmediate) — so forwards or answers that
 * many clients' requests produce together cost one system call and one TCP segment, not one
 * each. A lone write waits only for the end of its turn. Never blocks.
 */
import type { Writable } from 'node:stream';

/** A function that writes its bytes on `socket`, one write per turn of the event loop. */
export function turnWrites(socket: Writable): (bytes: Buffer) => void {
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  return (bytes) => {
    if (!corked) {
      corked = true;
      socket.cork();
      setImmediate(uncork);
    }
    socket.write(bytes);
  };
}
