import { Writable } from 'node:stream';
import { expect } from 'chai';
import { turnWrites } from '../../src/work/turnWrites.js';

/** A stream that notes each write it gets. */
function noting(): { stream: Writable; writes: string[] } {
  const writes: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      writes.push(chunk.toString());
      done();
    },
  });
  return { stream, writes };
}

const endOfTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('turnWrites: writes on a member link', () => {
  it('a lone write goes at once, waiting for nothing', () => {
    const { stream, writes } = noting();
    turnWrites(stream)(Buffer.from('a'));
    expect(writes).to.deep.equal(['a']);
  });

  it('what the rest of a turn writes leaves together, in one write, once the turn is over', async () => {
    const { stream, writes } = noting();
    const write = turnWrites(stream);
    for (const part of ['a', 'b', 'c', 'd']) write(Buffer.from(part));
    expect(writes).to.deep.equal(['a']);
    await endOfTurn();
    expect(writes).to.deep.equal(['a', 'bcd']);
    write(Buffer.from('e'));
    expect(writes, 'the next turn writes at once again').to.deep.equal(['a', 'bcd', 'e']);
    await endOfTurn();
    expect(writes).to.deep.equal(['a', 'bcd', 'e']);
  });
});
