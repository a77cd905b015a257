/**
 * LOG_FORMAT=pretty's line format (src/log/prettyLines.ts): pure text in, text out.
 */
import { expect } from 'chai';
import { formatLine } from '../../src/log/prettyLines.js';

describe('pretty log lines', () => {
  it('time, level and message first, then the fields; simple strings bare, the rest as JSON', () => {
    const line = JSON.stringify({
      level: 30,
      time: '2026-12-05T20:17:29.260Z',
      member: 'a',
      msg: 'leader changed',
      leader: 'b',
      term: '9',
      previous: null,
      note: 'two words',
    });
    expect(formatLine(line)).to.equal(
      '20:17:29.260 INFO  leader changed member=a leader=b term=9 previous=null note="two words"\n',
    );
  });

  it('an error as its message, its stack indented below; colour only when asked', () => {
    const line = JSON.stringify({
      level: 50,
      time: '2026-12-05T20:17:29.260Z',
      msg: 'failed',
      err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at x' },
    });
    expect(formatLine(line)).to.equal(
      '20:17:29.260 ERROR failed err="boom"\n    Error: boom\n        at x\n',
    );
    expect(formatLine(line, true)).to.include('\u001b[31mERROR\u001b[39m');
  });

  it('a line that is not a JSON object is passed on as it is', () => {
    for (const line of ['plain text', '[1,2]', '"x"', '{broken']) {
      expect(formatLine(line)).to.equal(`${line}\n`);
    }
  });
});
