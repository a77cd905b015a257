/**
 * The failover benchmark's wait for a quiet machine (bench/machineQuiet.ts): reading
 * /proc/stat's cpu line and the share of all cores busy between two readings.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { busyShare, parseCpuLine } from '../../bench/machineQuiet.js';

describe('bench: a quiet machine before a graceful handover', () => {
  it('reads busy and total ticks from /proc/stat: idle and iowait are not busy', () => {
    const stat = 'cpu  100 5 50 800 40 3 2 0 0 0\ncpu0 50 2 25 400 20 1 1 0 0 0\nintr 1\n';
    expect(parseCpuLine(stat)).to.deep.equal({ busy: 160, total: 1000 });
  });

  it('refuses what is not a cpu line, naming it', () => {
    expect(() => parseCpuLine('intr 1 2 3')).to.throw('not a /proc/stat cpu line: "intr 1 2 3"');
    expect(() => parseCpuLine('cpu 1 x 3 4')).to.throw('not a /proc/stat cpu line');
  });

  it('the busy share between two readings, 0 when no tick passed', () => {
    expect(busyShare({ busy: 100, total: 1000 }, { busy: 102, total: 1020 })).to.equal(0.1);
    expect(busyShare({ busy: 100, total: 1000 }, { busy: 120, total: 1020 })).to.equal(1);
    expect(busyShare({ busy: 100, total: 1000 }, { busy: 100, total: 1000 })).to.equal(0);
  });

  it('this machine’s /proc/stat parses (the benchmark runs on Linux)', () => {
    const ticks = parseCpuLine(readFileSync('/proc/stat', 'utf8'));
    expect(ticks.total).to.be.greaterThan(ticks.busy);
  });
});
