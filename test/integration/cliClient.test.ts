/**
 * `service-pool-leader status` and `work` against a running pool: the built CLI, real member
 * processes, a real etcd.
 */
import { expect } from 'chai';
import { EtcdCluster } from '../support/etcdCluster.js';
import { freePort } from '../../src/demo/ports.js';
import { runCli } from '../support/cli.js';
import { TestPool } from '../support/pool.js';

describe('the CLI client of a running pool', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster;
  let pool: TestPool;
  let urlA: string;
  let urlB: string;

  before(async () => {
    etcd = await EtcdCluster.start({ size: 1 });
    pool = new TestPool(etcd, { LEASE_TTL_SECONDS: '2' });
    await pool.start(['a', 'b']);
    expect(await pool.agreedLeader()).to.equal('a');
    urlA = pool.member('a').url;
    urlB = pool.member('b').url;
  });

  after(async () => {
    await pool?.close();
    await etcd?.close();
  });

  describe('status', () => {
    it('prints each pool with its leader and term, and its members oldest first, the leader marked', async () => {
      const result = await runCli(['status', '--url', urlB]);
      expect(result.stderr).to.equal('');
      expect(result.code).to.equal(0);
      const lines = result.stdout.trimEnd().split('\n');
      expect(lines[0]).to.match(/^pool default: leader a \(term \d+\), seen by b at revision \d+$/);
      expect(lines[1]).to.match(/^\s+ID\s+URL\s+CREATE REV$/);
      expect(lines[2]).to.match(new RegExp(`^  \\*\\s+a\\s+${urlA}\\s+\\d+$`));
      expect(lines[3]).to.match(new RegExp(`^\\s+b\\s+${urlB}\\s+\\d+$`));
      expect(lines).to.have.length(4);
      const [revA, revB] = [lines[2], lines[3]].map((line) => Number(line!.split(/\s+/).pop()));
      expect(revA).to.be.below(revB!);
    });

    it('--json prints GET /pools as the member sent it', async () => {
      const result = await runCli(['status', '--json'], { env: { SERVICE_POOL_URL: urlA } });
      expect(result.code).to.equal(0);
      const pools = JSON.parse(result.stdout) as {
        pool: string;
        leader: { id: string };
        term: number;
        members: { id: string }[];
      }[];
      expect(pools).to.have.length(1);
      expect(pools[0]!.pool).to.equal('default');
      expect(pools[0]!.leader.id).to.equal('a');
      expect(pools[0]!.term).to.be.a('number');
      expect(pools[0]!.members.map((m) => m.id)).to.deep.equal(['a', 'b']);
    });
  });

  describe('work', () => {
    it('prints the ticket, who did the work, the term and the route: ticket 17 by a (term 3) via b → a', async () => {
      const result = await runCli(['work', 'hello', '--url', urlB]);
      expect(result.stderr).to.equal('');
      expect(result.code).to.equal(0);
      expect(result.stdout).to.match(/^ticket \d+ by a \(term \d+\) via b → a\n$/);
    });

    it('--json prints the answer as the member sent it; --pool addresses the pool by name', async () => {
      const result = await runCli(['work', 'hello', '--url', urlB, '--pool', 'default', '--json']);
      expect(result.code).to.equal(0);
      const answer = JSON.parse(result.stdout) as Record<string, unknown>;
      expect(answer).to.include({ payload: 'hello', performedBy: 'a', leader: 'a' });
      expect(answer.via).to.deep.equal(['b', 'a']);
      expect(answer.ticket).to.be.a('number');
    });

    it('--simple goes the naive way, /simple-work, to the same leader', async () => {
      const result = await runCli(['work', '--simple', '--url', urlB]);
      expect(result.code).to.equal(0);
      expect(result.stdout).to.match(/^ticket \d+ by a \(term \d+\)/);
    });

    it("a service error is one line on stderr with the member's code, exit code 1", async () => {
      const result = await runCli(['work', 'x', '--url', urlA, '--pool', 'nope']);
      expect(result.code).to.equal(1);
      expect(result.stdout).to.equal('');
      expect(result.stderr).to.equal('error 404 NOT_FOUND: no pool "nope" on this member\n');
      const json = await runCli(['work', 'x', '--url', urlA, '--pool', 'nope', '--json']);
      expect(json.code).to.equal(1);
      expect(JSON.parse(json.stdout)).to.have.nested.property('error.code', 'NOT_FOUND');
    });
  });

  describe('failures before any answer', () => {
    it('nothing listening at the URL: a message naming it, exit code 1', async () => {
      const url = `http://127.0.0.1:${await freePort()}`;
      for (const args of [
        ['status', '--url', url],
        ['work', 'x', '--url', url],
      ]) {
        const result = await runCli(args);
        expect(result.code, args.join(' ')).to.equal(1);
        expect(result.stdout).to.equal('');
        expect(result.stderr).to.match(
          new RegExp(`^cannot reach ${url}/(pools|work): connection refused \\(is a member`),
        );
        expect(result.stderr.trimEnd().split('\n')).to.have.length(1);
      }
    });

    it('no command prints the help and starts nothing; an unknown command is named with the closest one; both exit 2', async () => {
      // Before: no command started a member (binding 0.0.0.0:8080, retrying etcd forever), and
      // a typo said "too many arguments for 'serve'".
      const none = await runCli([], { timeoutMs: 5000 });
      expect(none.code).to.equal(2);
      expect(none.stderr).to.include('Usage: service-pool-leader [options] [command]');
      for (const command of ['serve', 'demo', 'status', 'work']) {
        expect(none.stderr).to.match(new RegExp(`^  ${command}\\b`, 'm'));
      }
      expect(none.stdout).to.not.include('listening');
      const typo = await runCli(['stauts'], { timeoutMs: 5000 });
      expect(typo.code).to.equal(2);
      expect(typo.stderr).to.equal("error: unknown command 'stauts'\n(Did you mean status?)\n");
    });

    it('a bad URL, an unknown option or a second payload is a usage error, exit code 2', async () => {
      const badUrl = await runCli(['status', '--url', 'localhost:8081']);
      expect(badUrl.code).to.equal(2);
      expect(badUrl.stderr).to.include('--url "localhost:8081" is not an http:// or https:// URL');
      const badEnv = await runCli(['work'], { env: { SERVICE_POOL_URL: 'nonsense' } });
      expect(badEnv.code).to.equal(2);
      expect(badEnv.stderr).to.include('SERVICE_POOL_URL "nonsense" is not a URL');
      expect((await runCli(['status', '--bogus'])).code).to.equal(2);
      expect((await runCli(['work', 'a', 'b'])).code).to.equal(2);
      expect((await runCli(['work', '--help'])).code).to.equal(0);
    });
  });
});
