import { expect } from 'chai';
import {
  decodeShared,
  leaderClaimSchema,
  memberRecordSchema,
} from '../../src/membership/memberRecord.js';

const valid = {
  id: 'a',
  pool: 'default',
  url: 'http://127.0.0.1:8081',
  startedAt: '2026-11-26T10:00:00.000Z',
  pid: 123,
  version: '0.1.0',
  weight: 1,
  labels: { zone: 'x' },
  leads: [],
  candidate: true,
};

/** A record as the first release wrote it, before `candidate` and the other later fields. */
const firstRelease: Partial<typeof valid> = { ...valid };
delete firstRelease.candidate;

describe('member record validation', () => {
  it('accepts a well-formed record', () => {
    const decoded = decodeShared(memberRecordSchema, JSON.stringify(valid));
    expect(decoded).to.deep.equal({ ok: true, value: valid });
  });

  it('reads a record of an earlier version, without the fields added since, as a candidate', () => {
    expect(decodeShared(memberRecordSchema, JSON.stringify(firstRelease))).to.deep.equal({
      ok: true,
      value: valid,
    });
    const edge = decodeShared(memberRecordSchema, JSON.stringify({ ...valid, candidate: false }));
    expect(edge.ok && edge.value.candidate).to.equal(false);
    expect(
      decodeShared(memberRecordSchema, JSON.stringify({ ...valid, candidate: 'no' })).ok,
    ).to.equal(false);
  });

  it('rejects what is not JSON, with a reason and without throwing', () => {
    expect(decodeShared(memberRecordSchema, Buffer.from('garbage{'))).to.deep.equal({
      ok: false,
      reason: 'not JSON',
    });
  });

  for (const [what, record] of [
    ['a missing field', { ...valid, url: undefined }],
    ['a negative weight', { ...valid, weight: -1 }],
    ['a non-http url', { ...valid, url: 'ftp://x' }],
    ['a bad member id', { ...valid, id: 'has space' }],
    ['a non-object', [1, 2]],
  ] as const) {
    it(`rejects ${what}`, () => {
      const decoded = decodeShared(memberRecordSchema, JSON.stringify(record));
      expect(decoded.ok).to.equal(false);
      if (!decoded.ok) expect(decoded.reason).not.to.equal('');
    });
  }

  it('accepts a record with a field it does not know (written by a later version), ignoring that field', () => {
    const later = { ...valid, zone: 'eu-1', rack: { row: 3 } };
    expect(decodeShared(memberRecordSchema, JSON.stringify(later))).to.deep.equal({
      ok: true,
      value: valid,
    });
  });

  it('validates the leader claim the same way', () => {
    const claim = {
      memberKey: '/p/pools/default/members/1f',
      id: 'a',
      url: 'http://a:1',
      claimedAt: valid.startedAt,
    };
    expect(decodeShared(leaderClaimSchema, JSON.stringify(claim)).ok).to.equal(true);
    expect(decodeShared(leaderClaimSchema, JSON.stringify({ ...claim, id: '' })).ok).to.equal(
      false,
    );
    expect(
      decodeShared(leaderClaimSchema, JSON.stringify({ ...claim, note: 'later' })),
    ).to.deep.equal({
      ok: true,
      value: claim,
    });
  });

  describe('shared by the views of a process', () => {
    it('gives the answer decode gives, once per distinct value, frozen', () => {
      const raw = Buffer.from(JSON.stringify({ ...valid, id: 'shared-1' }));
      const first = decodeShared(memberRecordSchema, raw);
      expect(first).to.deep.equal(decodeShared(memberRecordSchema, raw));
      // Another buffer with the same bytes: the same answer, not a new one.
      expect(decodeShared(memberRecordSchema, Buffer.from(raw))).to.equal(first);
      expect(Object.isFrozen(first)).to.equal(true);
      if (first.ok) {
        expect(Object.isFrozen(first.value.labels)).to.equal(true);
        expect(() => first.value.leads.push('x')).to.throw(TypeError);
      }
    });

    it('remembers rejections too, and keeps schemas apart', () => {
      const raw = JSON.stringify({ ...valid, id: 'has space' });
      const rejected = decodeShared(memberRecordSchema, raw);
      expect(rejected.ok).to.equal(false);
      expect(decodeShared(memberRecordSchema, raw)).to.equal(rejected);
      expect(decodeShared(leaderClaimSchema, raw)).to.not.equal(rejected);
      expect(decodeShared(memberRecordSchema, 'garbage{')).to.deep.equal({
        ok: false,
        reason: 'not JSON',
      });
    });

    it('decodes a large value every time rather than holding on to it', () => {
      const raw = JSON.stringify({
        ...valid,
        labels: { big: 'x'.repeat(200) },
        pad: 'y'.repeat(70_000), // a field it does not know: ignored, and the record valid
      });
      const first = decodeShared(memberRecordSchema, raw);
      expect(first.ok).to.equal(true);
      expect(decodeShared(memberRecordSchema, raw)).to.not.equal(first);
    });
  });
});
