/**
 * Failed requests in the log: one line per error code and window plus one summary, each line
 * valid JSON with a single `msg` (the reason under `reason`), however many calls fail.
 */
import { expect } from 'chai';
import { pino } from 'pino';
import { FailureLog } from '../../src/log/failureLog.js';
import { duplicateKeys } from '../support/jsonKeys.js';

function capture() {
  const lines: string[] = [];
  const logger = pino({ level: 'info', base: null }, { write: (line: string) => lines.push(line) });
  return { logger, lines };
}

describe('FailureLog', () => {
  it('411 failures of one code in a window: the first with its reason, then one summary', () => {
    const { logger, lines } = capture();
    const log = new FailureLog(logger, 'work failed', 60_000);
    for (let i = 0; i < 411; i++) log.record('NO_LEADER', `no leader was elected within ${i} ms`);
    expect(lines).to.have.length(1);
    log.flush();
    expect(lines).to.have.length(2);
    const [first, summary] = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(first).to.include({
      msg: 'work failed',
      code: 'NO_LEADER',
      reason: 'no leader was elected within 0 ms',
    });
    expect(summary).to.include({
      msg: 'work failed: 410 more in 60 s',
      code: 'NO_LEADER',
      count: 410,
      lastReason: 'no leader was elected within 410 ms',
    });
  });

  it('each code has its own window; a window without repeats writes no summary', () => {
    const { logger, lines } = capture();
    const log = new FailureLog(logger, 'work failed', 60_000);
    log.record('NO_LEADER', 'a');
    log.record('UPSTREAM_TIMEOUT', 'b');
    log.record('NO_LEADER', 'c');
    log.flush();
    const parsed = lines.map((line) => JSON.parse(line) as { code: string; msg: string });
    expect(parsed.map((line) => [line.code, line.msg])).to.deep.equal([
      ['NO_LEADER', 'work failed'],
      ['UPSTREAM_TIMEOUT', 'work failed'],
      ['NO_LEADER', 'work failed: 1 more in 60 s'],
    ]);
  });

  it('the summary comes by itself when the window ends', async () => {
    const { logger, lines } = capture();
    const log = new FailureLog(logger, 'work failed', 50);
    log.record('NO_LEADER', 'a');
    log.record('NO_LEADER', 'b');
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(lines).to.have.length(2);
    log.record('NO_LEADER', 'c');
    expect(lines, 'a new window logs its first failure again').to.have.length(3);
  });

  it('every line is JSON with no key twice (the reason is not a second msg)', () => {
    const { logger, lines } = capture();
    const log = new FailureLog(logger, 'work failed', 60_000);
    log.record('NO_LEADER', 'x');
    log.record('NO_LEADER', 'y');
    log.flush();
    for (const line of lines) expect(duplicateKeys(line), line).to.deep.equal([]);
    expect(duplicateKeys('{"msg":"a","x":{"k":1,"k":2},"msg":"b"}')).to.deep.equal([
      '$.x.k',
      '$.msg',
    ]);
  });
});
