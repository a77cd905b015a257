/**
 * The pool's state as a view holds it (src/election/poolState.ts), fed key/values built by
 * hand: member order, puts and deletes, how a claim ends, invalid values, revisions, and
 * whether a reconcile probe agrees with the view. No etcd; the integration tests
 * (test/integration/poolView.test.ts) prove the reads and the watch that feed it.
 */
import { expect } from 'chai';
import type { IKeyValue } from 'etcd3';
import { poolKeys } from '../../src/etcd/keys.js';
import {
  agreesWith,
  PoolState,
  type PoolEvent,
  type ProbeCounts,
} from '../../src/election/poolState.js';

const POOL = 'default';
const keys = poolKeys('/unit', POOL);

function kv(key: string, value: string, create: number, mod = create, lease = '0'): IKeyValue {
  return {
    key: Buffer.from(key),
    value: Buffer.from(value),
    create_revision: String(create),
    mod_revision: String(mod),
    version: '1',
    lease,
  };
}

/** Member `id`'s key and record under lease `lease` (decimal), as a member writes them. */
function memberKv(id: string, lease: string, create: number, mod = create, pool = POOL) {
  const record = {
    id,
    pool,
    url: `http://${id}.test:8080`,
    startedAt: '2026-12-01T10:00:00.000Z',
    pid: 1,
    version: '0.0.0-test',
    weight: 1,
    labels: {},
    leads: [],
  };
  return kv(keys.member(lease), JSON.stringify(record), create, mod, lease);
}

/** The claim of member `id` (lease `lease`), put at revision `mod`: its term. */
function claimKv(id: string, lease: string, mod: number): IKeyValue {
  const claim = {
    memberKey: keys.member(lease),
    id,
    url: `http://${id}.test:8080`,
    claimedAt: '2026-12-01T10:00:01.000Z',
  };
  return kv(keys.leader, JSON.stringify(claim), mod, mod, lease);
}

function releaseNoteKv(id: string, term: number, reason: string, mod: number): IKeyValue {
  const note = { term: String(term), id, reason, at: '2026-12-01T10:00:02.000Z' };
  return kv(keys.released, JSON.stringify(note), mod, mod);
}

const put = (value: IKeyValue): PoolEvent => ({ type: 'Put', kv: value });
/** A delete event as etcd sends it: the key, the delete's revision, no value. */
const del = (key: string, mod: number): PoolEvent => ({ type: 'Delete', kv: kv(key, '', 0, mod) });

/** A state after a snapshot at `revision`, its reports discarded. */
function stateAt(revision: number, kvs: IKeyValue[] = []): PoolState {
  const state = new PoolState(POOL, keys);
  state.applySnapshot(BigInt(revision), kvs);
  return state;
}

/** Applies `events` as one watch response whose header is the last event's revision. */
function deliver(state: PoolState, events: PoolEvent[], now = 0) {
  const header = events.reduce((max, e) => Math.max(max, Number(e.kv.mod_revision)), 0);
  return state.applyEvents(events, BigInt(header), now);
}

const ids = (state: PoolState) => state.members.map((m) => m.record.id);

describe('the pool state', () => {
  describe('members', () => {
    it('a snapshot orders members by create revision as numbers: 9 before 10 before 100', () => {
      const state = stateAt(200, [
        memberKv('c', '3', 100),
        memberKv('b', '2', 10),
        memberKv('a', '1', 9),
      ]);
      expect(ids(state)).to.deep.equal(['a', 'b', 'c']);
      expect(state.members[0]!.createRevision).to.equal(9n);
    });

    it('a fresh read of the members orders them as numbers and leaves out invalid ones', () => {
      const state = new PoolState(POOL, keys);
      const { members, invalid } = state.validMembers([
        memberKv('b', '2', 10),
        kv(`${keys.membersPrefix}garbage`, '{}', 11),
        memberKv('a', '1', 9),
      ]);
      expect(members.map((m) => m.record.id)).to.deep.equal(['a', 'b']);
      expect(invalid.map((r) => r.kind)).to.deep.equal(['member_key']);
      // A read does not change the view.
      expect(state.members).to.deep.equal([]);
    });

    it('members joining after the snapshot go in their place, oldest first, and are a change', () => {
      const state = stateAt(9, [memberKv('a', '1', 9)]);
      expect(deliver(state, [put(memberKv('c', '3', 100))]).changed).to.equal(true);
      expect(deliver(state, [put(memberKv('b', '2', 10))]).changed).to.equal(true);
      expect(ids(state)).to.deep.equal(['a', 'b', 'c']);
      expect(state.member(keys.member('2'))?.record.id).to.equal('b');
    });

    it('a record rewritten in place keeps the member its place and takes the new version', () => {
      const state = stateAt(12, [memberKv('a', '1', 9), memberKv('b', '2', 10)]);
      deliver(state, [put(memberKv('a', '1', 9, 13))]);
      expect(ids(state)).to.deep.equal(['a', 'b']);
      expect(state.member(keys.member('1'))?.modRevision).to.equal(13n);
    });

    it('a member deleted leaves the list; a delete of a key the view does not hold is no change', () => {
      const state = stateAt(10, [memberKv('a', '1', 9), memberKv('b', '2', 10)]);
      expect(deliver(state, [del(keys.member('1'), 11)]).changed).to.equal(true);
      expect(ids(state)).to.deep.equal(['b']);
      expect(state.member(keys.member('1'))).to.equal(undefined);
      expect(deliver(state, [del(keys.member('7'), 12)]).changed).to.equal(false);
      expect(deliver(state, [del(keys.leader, 13)]).changed).to.equal(false);
    });

    it('events up to the snapshot revision are already in it; two deletes of one revision both apply', () => {
      const state = stateAt(20, [
        memberKv('a', '1', 9),
        memberKv('b', '2', 10),
        claimKv('a', '1', 15),
      ]);
      // The watch starts at the snapshot: an event at or below its revision is old news.
      expect(deliver(state, [del(keys.member('2'), 20)]).changed).to.equal(false);
      expect(ids(state)).to.deep.equal(['a', 'b']);
      // A lease revoke deletes the member key and the claim in one revision.
      deliver(state, [del(keys.member('1'), 21), del(keys.leader, 21)]);
      expect(ids(state)).to.deep.equal(['b']);
      expect(state.claim).to.equal(undefined);
    });
  });

  describe('the claim', () => {
    it('a claim put is the leader: its mod revision is the term', () => {
      const state = stateAt(10, [memberKv('a', '1', 9)]);
      expect(deliver(state, [put(claimKv('a', '1', 11))]).changed).to.equal(true);
      expect(state.claim?.term).to.equal(11n);
      expect(state.claim?.leaseId).to.equal('1');
      expect(state.claim?.claim?.id).to.equal('a');
    });

    it('an invalid claim value is still the claim, without a leader, and reported once', () => {
      const state = new PoolState(POOL, keys);
      const bad = kv(keys.leader, 'not json', 5, 5, '1');
      const update = state.applySnapshot(6n, [bad]);
      expect(state.claim).to.deep.equal({ term: 5n, leaseId: '1', claim: undefined });
      expect(update.invalid.map((r) => r.kind)).to.deep.equal(['claim']);
      expect(state.applySnapshot(6n, [bad]).invalid).to.deep.equal([]);
    });

    it('a claim deleted with a release note in the same revision ended for the note reason', () => {
      const state = stateAt(11, [memberKv('a', '1', 9), claimKv('a', '1', 11)]);
      deliver(state, [del(keys.leader, 12), put(releaseNoteKv('a', 11, 'handover', 12))], 4321);
      expect(state.claimEnded(11n)).to.deep.equal({
        term: 11n,
        leaderId: 'a',
        cause: 'handover',
        observedAt: 4321,
      });
      expect(state.claimEnded(10n)).to.equal(undefined);
    });

    it('a claim handed over (a put naming another holder, with its release note in the same revision) ended for the note reason', () => {
      const state = stateAt(11, [
        memberKv('a', '1', 9),
        memberKv('b', '2', 10),
        claimKv('a', '1', 11),
      ]);
      deliver(
        state,
        [
          put(claimKv('b', '2', 12)),
          put(releaseNoteKv('a', 11, 'stop', 12)),
          del(keys.member('1'), 12),
        ],
        777,
      );
      expect(state.claim?.term).to.equal(12n);
      expect(state.claimEnded(11n)).to.deep.equal({
        term: 11n,
        leaderId: 'a',
        cause: 'stop',
        observedAt: 777,
      });
    });

    it("a claim deleted with its holder's member key in the same revision expired", () => {
      const state = stateAt(11, [memberKv('a', '1', 9), claimKv('a', '1', 11)]);
      deliver(state, [del(keys.member('1'), 30), del(keys.leader, 30)]);
      expect(state.claimEnded(11n)?.cause).to.equal('expired');
    });

    it('a claim deleted alone ended for an unknown cause; a note or a delete of another revision does not count', () => {
      const state = stateAt(11, [
        memberKv('a', '1', 9),
        memberKv('b', '2', 10),
        claimKv('a', '1', 11),
      ]);
      deliver(state, [
        put(releaseNoteKv('a', 11, 'stop', 12)),
        del(keys.member('1'), 13),
        del(keys.leader, 14),
        del(keys.member('2'), 14),
      ]);
      expect(state.claimEnded(11n)?.cause).to.equal('unknown');
    });

    it('an invalid release note is reported and gives no cause', () => {
      const state = stateAt(11, [memberKv('a', '1', 9), claimKv('a', '1', 11)]);
      const update = deliver(state, [
        del(keys.leader, 12),
        put(kv(keys.released, '{"reason":"stop"}', 12)),
      ]);
      expect(update.invalid.map((r) => r.kind)).to.deep.equal(['release_note']);
      expect(state.claimEnded(11n)?.cause).to.equal('unknown');
    });

    it('a claim found gone by a new snapshot has no recorded end', () => {
      const state = stateAt(11, [memberKv('a', '1', 9), claimKv('a', '1', 11)]);
      state.applySnapshot(20n, [memberKv('a', '1', 9)]);
      expect(state.claim).to.equal(undefined);
      expect(state.claimEnded(11n)).to.equal(undefined);
    });
  });

  describe('invalid values', () => {
    it('foreign values under the prefix are reported once per key version, never under state/', () => {
      const state = new PoolState(POOL, keys);
      const foreign = kv(`${keys.pool}elsewhere`, 'x', 3);
      const stray = kv(`${keys.membersPrefix}not-a-lease`, 'x', 4);
      const otherPool = memberKv('z', '9', 5, 5, 'other');
      const stateKey = kv(`${keys.statePrefix}anything`, 'x', 6);
      const first = state.applySnapshot(6n, [foreign, stray, otherPool, stateKey]);
      expect(first.invalid.map((r) => [r.kind, r.key])).to.deep.equal([
        ['foreign_key', foreign.key.toString()],
        ['member_key', stray.key.toString()],
        ['member_record', otherPool.key.toString()],
      ]);
      expect(first.changed).to.equal(true);
      // A resync reads them again: nothing new to report.
      expect(state.applySnapshot(6n, [foreign, stray, otherPool]).invalid).to.deep.equal([]);
      // A new version of one is.
      const again = deliver(state, [put(kv(`${keys.pool}elsewhere`, 'y', 3, 7))]);
      expect(again.invalid.map((r) => r.kind)).to.deep.equal(['foreign_key']);
      expect(again.changed).to.equal(false);
    });

    it('a report is forgotten with its key: the same version seen after a restore is reported again', () => {
      const stray = kv(`${keys.membersPrefix}not-a-lease`, 'x', 4);
      const state = stateAt(4, [stray]);
      deliver(state, [del(stray.key.toString(), 5)]);
      // etcd restored from a backup taken before the delete.
      expect(state.applySnapshot(4n, [stray]).invalid.map((r) => r.kind)).to.deep.equal([
        'member_key',
      ]);
    });

    it('invalid member keys count as member keys until deleted, but are no members', () => {
      const stray = kv(`${keys.membersPrefix}not-a-lease`, 'x', 4);
      const state = stateAt(5, [memberKv('a', '1', 3), stray]);
      expect(ids(state)).to.deep.equal(['a']);
      expect(state.memberKeys).to.equal(2);
      deliver(state, [del(stray.key.toString(), 6)]);
      expect(state.memberKeys).to.equal(1);
    });

    it('a member whose record turns invalid leaves the members and stays a member key', () => {
      const state = stateAt(5, [memberKv('a', '1', 3), memberKv('b', '2', 4)]);
      const update = deliver(state, [put(kv(keys.member('1'), '{}', 3, 6, '1'))]);
      expect(update.changed).to.equal(true);
      expect(update.invalid.map((r) => r.kind)).to.deep.equal(['member_record']);
      expect(ids(state)).to.deep.equal(['b']);
      expect(state.memberKeys).to.equal(2);
    });
  });

  describe('revisions and the ticket mark', () => {
    it('the revision follows events and headers and never moves back on a lagging header', () => {
      const state = stateAt(10);
      // Each event's revision counts, whatever the header says.
      state.applyEvents([put(memberKv('a', '1', 12))], 0n, 0);
      expect(state.revision).to.equal(12n);
      // A watch served by an etcd member that lags: its header is below what the view has.
      state.applyEvents([], 8n, 0);
      expect(state.revision).to.equal(12n);
      // A progress header raises it without events.
      state.applyEvents([], 15n, 0);
      expect(state.revision).to.equal(15n);
    });

    it('the ticket mark is read from snapshots and puts, 0 when missing or deleted', () => {
      const state = new PoolState(POOL, keys);
      expect(state.applySnapshot(3n, []).ticketMarks).to.deep.equal([0n]);
      const marked = state.applySnapshot(3n, [kv(keys.ticketHighWater, '2000', 2)]);
      expect(marked.ticketMarks).to.deep.equal([2000n]);
      const events = [
        put(kv(keys.ticketHighWater, '3000', 2, 4)),
        put(kv(keys.ticketHighWater, 'lots', 2, 5)),
        del(keys.ticketHighWater, 6),
      ];
      expect(deliver(state, events).ticketMarks).to.deep.equal([3000n, 0n]);
    });

    it('the ticket mark is held with the revision of its write: absent is 0 at 0, a damaged one unknown', () => {
      const state = new PoolState(POOL, keys);
      state.applySnapshot(3n, []);
      expect(state.ticketMark).to.deep.equal({ value: 0n, modRevision: 0n });
      state.applySnapshot(3n, [kv(keys.ticketHighWater, '2000', 2)]);
      expect(state.ticketMark).to.deep.equal({ value: 2000n, modRevision: 2n });
      deliver(state, [put(kv(keys.ticketHighWater, '3000', 2, 4))]);
      expect(state.ticketMark).to.deep.equal({ value: 3000n, modRevision: 4n });
      deliver(state, [put(kv(keys.ticketHighWater, 'lots', 2, 5))]);
      expect(state.ticketMark).to.equal(undefined);
      deliver(state, [del(keys.ticketHighWater, 6)]);
      expect(state.ticketMark).to.deep.equal({ value: 0n, modRevision: 0n });
    });
  });

  describe('whether a reconcile probe agrees with the view', () => {
    const probe = (counts: Partial<ProbeCounts> = {}): ProbeCounts => ({
      memberKeys: 2,
      changed: 0,
      claimTerm: 11n,
      ...counts,
    });
    const state = () =>
      stateAt(11, [memberKv('a', '1', 9), memberKv('b', '2', 10), claimKv('a', '1', 11)]);

    it('the same member keys and claim term, nothing changed since: it agrees', () => {
      expect(agreesWith(probe(), state())).to.equal(true);
      expect(agreesWith(probe({ claimTerm: undefined, memberKeys: 0 }), stateAt(3))).to.equal(true);
    });

    it('a member the watch has yet to deliver, come or gone: it disagrees', () => {
      expect(agreesWith(probe({ memberKeys: 3 }), state())).to.equal(false);
      expect(agreesWith(probe({ memberKeys: 1 }), state())).to.equal(false);
    });

    it('a claim change the watch has yet to deliver: it disagrees', () => {
      expect(agreesWith(probe({ claimTerm: 14n }), state())).to.equal(false);
      expect(agreesWith(probe({ claimTerm: undefined }), state())).to.equal(false);
      expect(agreesWith(probe({ memberKeys: 0 }), stateAt(3))).to.equal(false);
    });

    it('a scanning probe saw a put after the view, the count unchanged: it disagrees', () => {
      expect(agreesWith(probe({ changed: 1 }), state())).to.equal(false);
    });

    it('invalid keys under the members prefix are counted: no lost event', () => {
      const withStray = stateAt(11, [
        memberKv('a', '1', 9),
        kv(`${keys.membersPrefix}not-a-lease`, 'x', 10),
        claimKv('a', '1', 11),
      ]);
      expect(agreesWith(probe(), withStray)).to.equal(true);
    });
  });
});
