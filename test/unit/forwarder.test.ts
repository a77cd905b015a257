import { execFileSync } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { failure } from '../support/forwardOutcome.js';
import {
  Forwarder,
  HOPS_HEADER,
  TERM_HEADER,
  TOKEN_HEADER,
  VIA_HEADER,
  type ForwardTarget,
} from '../../src/work/forwarder.js';
import { LINK_PATH } from '../../src/work/linkFrames.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('Forwarder', function () {
  let server: http.Server;
  let handler: http.RequestListener = () => undefined;
  let target: ForwardTarget;
  const forwarder = new Forwarder(400, 'the-forward-token');
  const request = { pool: 'default', payload: { n: 1 }, hops: 0, via: ['b'] };

  before(async () => {
    // A leader of a version without member links: this file pins forwards by HTTP
    // (memberLink.test.ts pins them on a link).
    server = http.createServer((req, res) => {
      if (req.url === LINK_PATH) res.writeHead(404).end();
      else handler(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    target = { id: 'a', url: `http://127.0.0.1:${port}`, term: 7n };
  });
  after(() => {
    forwarder.close();
    server.closeAllConnections();
    server.close();
  });

  const answer =
    (status: number, body: string) => (req: http.IncomingMessage, res: http.ServerResponse) => {
      req.resume();
      req.on('end', () => res.writeHead(status, { 'content-type': 'application/json' }).end(body));
    };

  it('POSTs the payload with the forwarding headers and returns the answer', async () => {
    let seen: { url?: string | undefined; headers?: http.IncomingHttpHeaders; body?: string } = {};
    handler = (req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        seen = { url: req.url, headers: req.headers, body };
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"x"}');
      });
    };
    const result = await forwarder.forward(target, request);
    expect(result.status).to.equal(503);
    expect(result.contentType).to.equal('application/json');
    expect(result.bytes.toString()).to.equal('{"error":"x"}');
    expect(seen.url).to.equal('/pools/default/work');
    expect(JSON.parse(seen.body!)).to.deep.equal({ payload: { n: 1 } });
    expect(seen.headers!['content-type']).to.equal('application/json');
    expect(seen.headers![HOPS_HEADER]).to.equal('1');
    expect(seen.headers![TERM_HEADER]).to.equal('7');
    expect(seen.headers![VIA_HEADER]).to.equal('b');
    expect(seen.headers![TOKEN_HEADER]).to.equal('the-forward-token');
  });

  it("keeps the path of the leader's URL: its routes may be mounted under a prefix", async () => {
    let url: string | undefined;
    handler = (req, res) => {
      url = req.url;
      answer(200, '{}')(req, res);
    };
    for (const prefix of ['/pool-api', '/pool-api/']) {
      await forwarder.forward({ ...target, url: `${target.url}${prefix}` }, request);
      expect(url, prefix).to.equal('/pool-api/pools/default/work');
    }
  });

  it('a refused connection is unreachable (nothing was sent)', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const result = await failure(
      forwarder.forward({ ...target, url: `http://127.0.0.1:${port}` }, request),
    );
    expect(result).to.equal('unreachable');
  });

  it('out of file descriptors (EMFILE): unreachable, nothing was sent, not "may have executed"', () => {
    // A process whose every descriptor is taken, under `prlimit`, forwards once.
    const script = `
      import fs from 'node:fs';
      import http from 'node:http';
      const { Forwarder, UpstreamUnreachableError } = await import(process.argv[1]);
      const server = http.createServer((req, res) => { req.resume(); req.on('end', () => res.end('{}')); });
      await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
      const forwarder = new Forwarder(1000);
      const taken = [];
      try { for (;;) taken.push(fs.openSync('/dev/null', 'r')); } catch {}
      let outcome;
      try {
        await forwarder.forward({ id: 'a', url: 'http://127.0.0.1:' + server.address().port, term: 1n },
          { pool: 'default', payload: 1, hops: 0, via: [] });
        outcome = 'answered';
      } catch (error) {
        outcome = error instanceof UpstreamUnreachableError ? 'unreachable ' + error.reason : error.code + ' ' + error.message;
      }
      for (const fd of taken) fs.closeSync(fd);
      process.stdout.write(outcome);
      process.exit(0);`;
    const compiled = path.join(REPO_ROOT, 'dist/src/work/forwarder.js');
    const out = execFileSync(
      'prlimit',
      ['--nofile=256:256', process.execPath, '--input-type=module', '-e', script, compiled],
      { encoding: 'utf8' },
    );
    expect(out).to.equal('unreachable EMFILE');
  });

  it('421 is "not leader"', async () => {
    handler = answer(421, '{"error":{"code":"NOT_LEADER"}}');
    expect(await failure(forwarder.forward(target, request))).to.equal('not-leader');
  });

  it('a connection reset after the request was sent is ambiguous, not retryable', async () => {
    handler = (req) => req.on('data', () => req.socket.destroy());
    expect(await failure(forwarder.forward(target, request))).to.equal('UPSTREAM_FAILED');
  });

  it('no answer within the forward timeout is UPSTREAM_TIMEOUT', async () => {
    handler = () => undefined;
    expect(await failure(forwarder.forward(target, request))).to.equal('UPSTREAM_TIMEOUT');
  });

  it('abandoning a sent forward is an ambiguous UPSTREAM_FAILED', async () => {
    handler = () => undefined;
    const abandon = new AbortController();
    setTimeout(() => abandon.abort(), 50);
    expect(await failure(forwarder.forward(target, request, abandon.signal))).to.equal(
      'UPSTREAM_FAILED',
    );
  });

  it('an answer over 1 MiB is refused as ambiguous', async () => {
    handler = answer(200, JSON.stringify('x'.repeat(1024 * 1024 + 10)));
    expect(await failure(forwarder.forward(target, request))).to.equal('UPSTREAM_FAILED');
  });

  it('an answer that is not JSON is UPSTREAM_FAILED', async () => {
    handler = answer(200, '<html>');
    expect(await failure(forwarder.forward(target, request))).to.equal('UPSTREAM_FAILED');
  });

  it('keeps working after failures', async () => {
    handler = answer(200, '{"ok":true}');
    const result = await forwarder.forward(target, request);
    expect([result.status, result.bytes.toString()]).to.deep.equal([200, '{"ok":true}']);
  });
});
