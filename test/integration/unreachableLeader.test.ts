/**
 * A leader whose ADVERTISE_URL does not reach it (a wrong port): it warns at start-up, the
 * followers say which leader at which URL they cannot reach and why, log it once, and show it
 * in /pool. Real members on a real etcd.
 */
import { expect } from 'chai';
import { EtcdCluster } from '../support/etcdCluster.js';
import { freePorts } from '../../src/demo/ports.js';
import { TestPool } from '../support/pool.js';

class MisadvertisedPool extends TestPool {
  /** Starts `id` advertising a port nothing listens on. */
  async startMisadvertised(id: string, wrongPort: number) {
    return this.spawn(id, (await freePorts(1))[0]!, {
      ADVERTISE_URL: `http://127.0.0.1:${wrongPort}`,
    });
  }
}

describe('a leader that cannot be reached at its ADVERTISE_URL', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster;
  let pool: MisadvertisedPool | undefined;

  before(async () => {
    etcd = await EtcdCluster.start({ size: 1 });
  });
  after(async () => {
    await pool?.close();
    await etcd?.close();
  });

  it('warns at start-up; followers answer LEADER_UNREACHABLE with its URL and why, log it once and show it in /pool', async () => {
    pool = new MisadvertisedPool(etcd, { LEASE_TTL_SECONDS: '2', LEADERLESS_WAIT_MS: '1000' });
    const [wrongPort] = await freePorts(1);
    const wrongUrl = `http://127.0.0.1:${wrongPort}`;
    const a = await pool.startMisadvertised('a', wrongPort!);
    await pool.start(['b']);
    expect(await pool.agreedLeader()).to.equal('a');
    expect(a.recentOutput()).to.include('ADVERTISE_URL does not reach this member');

    const answers = await Promise.all([1, 2, 3].map(() => pool!.work('b')));
    for (const answer of answers) {
      expect(answer.status).to.equal(503);
      expect(answer.body.error?.code).to.equal('LEADER_UNREACHABLE');
      expect(answer.body.error?.message).to.match(
        new RegExp(`^leader a at ${wrongUrl} could not be reached for \\d+ ms \\(ECONNREFUSED\\)$`),
      );
    }
    const view = (await (await fetch(`${pool.member('b').url}/pool`)).json()) as {
      leader: { id: string; unreachable: string | null };
    };
    expect(view.leader).to.include({ id: 'a', unreachable: 'ECONNREFUSED' });
    const warnings = pool
      .member('b')
      .recentOutput()
      .split('\n')
      .filter((line) => line.includes('the leader cannot be reached at its advertised URL'));
    expect(warnings, 'logged once for three calls').to.have.length(1);
    expect(warnings[0]).to.include(wrongUrl);
    expect(pool.member('b').recentOutput()).to.not.include('ADVERTISE_URL does not reach');
  });
});
