/**
 * The consistency checks of a throughput row (bench/throughputChecks.ts): Little's law between
 * req/s, mean latency and connections, and the server's count against the client's. Pure
 * arithmetic on figures the test chooses.
 */
import { expect } from 'chai';
import { littlesRatio, rowProblems, type RowTiming } from '../../bench/throughputChecks.js';

/** A row as a healthy run produces it: 10 connections, 2,500 req/s, 3.9 ms mean. */
const consistent: RowTiming = {
  row: '/work via a follower, 10 conn., round 1',
  connections: 10,
  requestsPerSecond: 2500,
  meanLatencyMs: 3.9,
  clientRequests: 20_000,
  serverRequests: 20_004,
};

describe('bench consistency checks', () => {
  it('a consistent row passes: Little ratio near 1, the server a few in-flight requests ahead', () => {
    expect(littlesRatio(consistent)).to.be.closeTo(0.975, 1e-9);
    expect(rowProblems(consistent)).to.deep.equal([]);
    expect(rowProblems({ ...consistent, serverRequests: consistent.clientRequests })).to.deep.equal(
      [],
    );
  });

  it("autocannon's mis-timing — high req/s with impossibly low latency — fails and names the row and figures", () => {
    // 6,700 req/s on one connection cannot come with a mean of 0.05 ms: 1000 / 6700 = 0.149 ms
    // per request, so the connection was idle two thirds of the time by these figures.
    const problems = rowProblems({
      row: '/work via nginx, 1 conn., round 2',
      connections: 1,
      requestsPerSecond: 6700,
      meanLatencyMs: 0.05,
      clientRequests: 20_100,
      serverRequests: 20_100,
    });
    expect(problems).to.have.length(1);
    expect(problems[0]).to.include('/work via nginx, 1 conn., round 2');
    expect(problems[0]).to.include("Little's law");
    expect(problems[0]).to.include('6700 req/s');
    expect(problems[0]).to.include('0.34');
  });

  it('the opposite mis-timing — latencies longer than the rate allows — fails too', () => {
    const problems = rowProblems({ ...consistent, connections: 1, meanLatencyMs: 2.6 });
    expect(problems.join('\n')).to.include("Little's law");
  });

  it('a count mismatch fails: fewer served than counted, or more than one extra per connection', () => {
    const fewer = rowProblems({ ...consistent, serverRequests: 19_990 });
    expect(fewer).to.have.length(1);
    expect(fewer[0]).to.include('served 19990 requests, the client counted 20000');
    expect(rowProblems({ ...consistent, serverRequests: 20_011 })).to.have.length(1);
    expect(rowProblems({ ...consistent, serverRequests: 20_010 })).to.deep.equal([]);
  });

  it('a row without a server-side count fails: it cannot be checked', () => {
    const problems = rowProblems({ ...consistent, serverRequests: undefined });
    expect(problems).to.deep.equal([
      "/work via a follower, 10 conn., round 1: no server-side count to check the client's against",
    ]);
  });
});
