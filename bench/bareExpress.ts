/**
 * The references of the throughput benchmark (bench/throughput.ts), each in a child process
 * of its own like a pool member, printing its port to the parent over IPC:
 *
 * - `bareExpress.ts`: Express 5 with one trivial route returning a small JSON (GET, and POST
 *   with a JSON body as a forward sends it) — what the framework serves on this machine when
 *   it does nothing else: the ceiling;
 * - `bareExpress.ts forward <url>`: Express 5 whose GET route forwards to `<url>` as the pool's
 *   follower does (POST with a JSON body over a keep-alive agent, answer parsed and sent on)
 *   and nothing more: what one hop costs in Node's HTTP stack, without the pool's own work.
 *
 * Both are configured as the service's app is (no ETag, no X-Powered-By), so the differences
 * in the table are the service's own work. Each counts the requests it answered and tells the
 * parent on the IPC message `count` (`{ count }`): the server side's count that the
 * benchmark's consistency check holds against the load generator's (bench/throughputChecks.ts).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';

const app = express();
app.disable('x-powered-by');
app.set('etag', false);

const [role, upstream] = process.argv.slice(2);
let answered = 0;
app.use((_req, res, next) => {
  res.once('finish', () => answered++);
  next();
});
if (role === 'forward' && upstream !== undefined) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const target = new URL('/bare', upstream);
  app.get('/bare', (req, res, next) => {
    const body = JSON.stringify({ payload: req.query.payload ?? null });
    const forward = http.request(
      target,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => {
          res
            .status(answer.statusCode ?? 502)
            .json(JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown);
        });
      },
    );
    forward.on('error', next);
    forward.end(body);
  });
} else {
  app.get('/bare', (req, res) => {
    res.json({ payload: req.query.payload ?? null, performedBy: 'bare' });
  });
  app.post('/bare', express.json(), (req, res) => {
    res.json({ payload: (req.body as { payload?: unknown }).payload ?? null, performedBy: 'bare' });
  });
}

const server = app.listen(0, '127.0.0.1', () => {
  process.send?.({ port: (server.address() as AddressInfo).port });
});
process.on('message', (message: unknown) => {
  if (message === 'count') process.send?.({ count: answered });
});
process.on('disconnect', () => process.exit(0));
