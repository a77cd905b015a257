/**
 * Where in the lease renewal cycle a crash trial kills the leader (bench/crashPhase.ts): the
 * stratified schedule every system shares, the wait for a renewal with its phase still ahead
 * (on a fake clock and renewals the test chooses), and the etcd3 candidate's `renewed` line
 * that tells the benchmark when its lease was renewed.
 */
import { expect } from 'chai';
import {
  crashPhases,
  phaseTarget,
  renewalIntervalMs,
  SIGNAL_LEAD_MS,
  type RenewalClock,
} from '../../bench/crashPhase.js';
import { etcd3Election, goElection } from '../../bench/peerSystems.js';

/**
 * Renewals every `intervalMs` from 0 up to `until`, renewal r learnt `noticed(r)` ms after it,
 * on a clock that starts at `startAt` and, while a renewal is waited for, jumps to the moment
 * it is learnt (or to the end of the wait).
 */
function renewalsEvery(
  intervalMs: number,
  {
    startAt,
    noticed = () => 0,
    until = Infinity,
  }: { startAt: number; noticed?: (renewal: number) => number; until?: number },
) {
  let clock = startAt;
  const waits: (number | undefined)[] = [];
  const renewal = (k: number) => (k >= 0 && k * intervalMs <= until ? k * intervalMs : undefined);
  const learntBy = (r: number | undefined, at: number) => r !== undefined && r + noticed(r) <= at;
  const renewals: RenewalClock = {
    latest: () => {
      const k = Math.floor(clock / intervalMs);
      const last = [renewal(k), renewal(k - 1)].find((r) => learntBy(r, clock));
      return Promise.resolve(last);
    },
    next: (after, timeoutMs) => {
      waits.push(after);
      const next = renewal(after === undefined ? 0 : Math.floor(after / intervalMs) + 1);
      if (next === undefined || next + noticed(next) > clock + timeoutMs) {
        clock += timeoutMs;
        return Promise.resolve(undefined);
      }
      clock = Math.max(clock, next + noticed(next));
      return Promise.resolve(next);
    },
  };
  return { renewals, waits, now: () => clock };
}

const wanted = { ttlSeconds: 2, whose: 'leader a' };

describe('bench: the kill phase of a crash trial', () => {
  it('both systems renew every TTL/3: 666.7 ms at TTL 2 s, 1666.7 ms at TTL 5 s', () => {
    expect(renewalIntervalMs(2)).to.be.closeTo(666.67, 0.01);
    expect(renewalIntervalMs(5)).to.be.closeTo(1666.67, 0.01);
  });

  it('n trials kill at the middles of n equal strata of the renewal interval, each once', () => {
    const interval = renewalIntervalMs(5);
    for (const n of [1, 4, 10, 16]) {
      const phases = crashPhases(n, 5);
      expect(phases).to.have.length(n);
      const sorted = [...phases].sort((a, b) => a - b);
      sorted.forEach((phase, s) => expect(phase).to.be.closeTo(((s + 0.5) / n) * interval, 1e-9));
    }
    expect(crashPhases(1, 2)[0]).to.be.closeTo(333.33, 0.01);
  });

  it('the strata come in a spread order: the first trials, or a run cut short, cover the cycle', () => {
    expect(crashPhases(4, 2).map((p) => Math.round(p))).to.deep.equal([83, 417, 250, 583]);
    const interval = renewalIntervalMs(2);
    const tenths = crashPhases(10, 2).map((p) => Math.floor((p / interval) * 10));
    expect(tenths).to.deep.equal([0, 5, 3, 8, 2, 7, 4, 9, 1, 6]);
    // The first half of the trials: some in each half of the cycle, not the five shortest.
    const firstFive = tenths.slice(0, 5);
    expect(firstFive.filter((t) => t < 5)).to.have.length.within(2, 3);
    // The same schedule every time it is asked for, so every system gets the same phases.
    expect(crashPhases(10, 2)).to.deep.equal(crashPhases(10, 2));
  });

  it('the latest renewal is used when its phase is still ahead: no wait', async () => {
    const { renewals, waits, now } = renewalsEvery(1000, { startAt: 1100 });
    const target = await phaseTarget(renewals, { ...wanted, phaseMs: 300 }, now);
    expect(target).to.deep.equal({ renewedAt: 1000, at: 1300 });
    expect(waits).to.deep.equal([]);
  });

  it('a phase already past waits for the next renewal and kills that long after it', async () => {
    const { renewals, waits, now } = renewalsEvery(1000, { startAt: 1500, noticed: () => 3 });
    const target = await phaseTarget(renewals, { ...wanted, phaseMs: 300 }, now);
    expect(target).to.deep.equal({ renewedAt: 2000, at: 2300 });
    expect(waits).to.deep.equal([1000]);
  });

  it('a renewal learnt too late for a short phase is passed over for the next one, not killed late', async () => {
    // Renewal 2000 is learnt 20 ms after it, too late for a 12 ms phase; 3000 after 2 ms.
    const noticed = (r: number) => (r === 2000 ? 20 : 2);
    const { renewals, waits, now } = renewalsEvery(1000, { startAt: 1500, noticed });
    const target = await phaseTarget(renewals, { ...wanted, phaseMs: 12 }, now);
    expect(target).to.deep.equal({ renewedAt: 3000, at: 3012 });
    expect(waits).to.deep.equal([1000, 2000]);
    // SIGNAL_LEAD_MS ahead is enough: learnt 10 ms after it, a phase of 10 + the lead serves.
    const late = renewalsEvery(1000, { startAt: 1500, noticed: () => 10 });
    const phaseMs = 10 + SIGNAL_LEAD_MS;
    expect(await phaseTarget(late.renewals, { ...wanted, phaseMs }, late.now)).to.deep.equal({
      renewedAt: 2000,
      at: 2000 + phaseMs,
    });
  });

  it('before any renewal is known, the first one counts', async () => {
    const { renewals, waits, now } = renewalsEvery(1000, { startAt: -50, noticed: () => 2 });
    const target = await phaseTarget(renewals, { ...wanted, phaseMs: 100 }, now);
    expect(target).to.deep.equal({ renewedAt: 0, at: 100 });
    expect(waits).to.deep.equal([undefined]);
  });

  it('a lease that shows no renewal within a TTL fails the trial, naming whose it is', async () => {
    const { renewals, now } = renewalsEvery(1000, { startAt: 1500, until: 1000 });
    let error: unknown;
    await phaseTarget(renewals, { ...wanted, phaseMs: 300 }, now).catch(
      (e: unknown) => (error = e),
    );
    expect(error).to.be.instanceOf(Error);
    expect((error as Error).message).to.equal('leader a: no lease renewal seen within 2000 ms');
  });

  it("the etcd3 candidate's `renewed <ms>` line says how long before it the keep-alive was sent", () => {
    expect(etcd3Election.read('renewed 1.4', 'a.0')).to.deep.equal({ said: 'renewed', ms: 1.4 });
    expect(etcd3Election.read('renewed 0', 'a.0')).to.deep.equal({ said: 'renewed', ms: 0 });
    for (const malformed of ['renewed', 'renewed x', 'renewed -1', 'renewed 1 2']) {
      expect(etcd3Election.read(malformed, 'a.0'), malformed).to.equal(undefined);
    }
    expect(etcd3Election.read('elected a.0', 'a.0')).to.deep.equal({ said: 'elected' });
    // etcdctl elect prints no renewals: it never runs a crash scenario (60 s lease).
    expect(goElection.read('renewed 1.4', 'a.0')).to.equal(undefined);
    expect(goElection.runs('crash', 2)).to.equal(false);
  });
});
