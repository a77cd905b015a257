/**
 * Writing a reply: on an Express response in a host app, whose middleware may wrap
 * `writeHead` or read the headers once the answer is written, every field is set as a header
 * of the response; on the member's own server (the lean path) the head goes in one
 * `writeHead`, with the same fields on the wire.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { expect } from 'chai';
import { sendReply, sendReplyDirect, type Reply } from '../../src/http/errors.js';

const REPLY: Reply = {
  status: 503,
  headers: { 'Retry-After': '1' },
  contentType: 'application/json; charset=utf-8',
  bytes: '{"error":{"code":"OVERLOADED"}}',
};

/** Serves `handler` on loopback, asks it once, and closes it: the answer's status, head, body. */
async function askOnce(handler: http.RequestListener) {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const answer = await fetch(`http://127.0.0.1:${port}/work`);
    return {
      status: answer.status,
      retryAfter: answer.headers.get('retry-after'),
      type: answer.headers.get('content-type'),
      length: answer.headers.get('content-length'),
      body: await answer.text(),
    };
  } finally {
    server.close();
  }
}

const EXPECTED = {
  status: 503,
  retryAfter: '1',
  type: 'application/json; charset=utf-8',
  length: String(Buffer.byteLength(REPLY.bytes)),
  body: REPLY.bytes,
};

describe('sendReply', () => {
  it("on an Express response, the host app's middleware sees every field as a header", async () => {
    let seen: http.OutgoingHttpHeaders | undefined;
    const app = express();
    app.use((_req, res, next) => {
      // As on-headers 1.0 (compression, morgan, response-time) does: a list given to writeHead
      // is read as [name, value] pairs, set one by one before the head goes.
      const writeHead = res.writeHead.bind(res);
      res.writeHead = function (this: http.ServerResponse, status: number, fields?: unknown) {
        if (Array.isArray(fields)) {
          for (const pair of fields as [string, string][]) this.setHeader(pair[0], pair[1]);
        }
        seen = this.getHeaders();
        return writeHead(status);
      } as typeof res.writeHead;
      next();
    });
    app.get('/work', (_req, res) => sendReply(res, REPLY));
    expect(await askOnce(app)).to.deep.equal(EXPECTED);
    expect(seen).to.deep.include({
      'retry-after': '1',
      'content-type': REPLY.contentType,
      'content-length': Buffer.byteLength(REPLY.bytes),
    });
  });

  it('on the member’s own server, one writeHead puts the same fields on the wire', async () => {
    expect(await askOnce((_req, res) => sendReplyDirect(res, REPLY))).to.deep.equal(EXPECTED);
    const closing = await askOnce((_req, res) => {
      // Set before, as admission does when the member drains: it still goes.
      res.setHeader('Connection', 'close');
      sendReplyDirect(res, REPLY);
    });
    expect(closing).to.deep.equal(EXPECTED);
  });
});
