// A client in its own container (or inside a pod, through `podman exec`): resolves URL's host
// once (a Service's address never changes; the stand-in DNS may drop a query while containers
// come and go, which a cluster's DNS does not), then GETs URL every
// INTERVAL_MS on a new connection each time, as `curl` in a loop does, for at most MAX_CALLS
// calls and MAX_MS milliseconds, and prints one JSON line per call: {startedAt, endedAt, status,
// body}. A call that got no HTTP answer has status 0 and body.error.code CONNECTION_LOST or
// TIMEOUT. Stops by itself, or on SIGTERM after the call in flight.
import dns from 'node:dns/promises';
import http from 'node:http';

const url = new URL(process.env.URL);
const { address } = await dns.lookup(url.hostname);
const target = {
  host: address,
  port: url.port || 80,
  path: url.pathname + url.search,
  headers: { host: url.host },
};
const intervalMs = Number(process.env.INTERVAL_MS ?? 20);
const maxCalls = Number(process.env.MAX_CALLS ?? 10000);
const maxMs = Number(process.env.MAX_MS ?? 60000);
const timeoutMs = Number(process.env.TIMEOUT_MS ?? 10000);

let stopping = false;
process.on('SIGTERM', () => (stopping = true));

function call() {
  return new Promise((resolve) => {
    const startedAt = Date.now();
    const done = (status, body) => resolve({ startedAt, endedAt: Date.now(), status, body });
    const request = http.get({ ...target, agent: false, timeout: timeoutMs }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => (text += chunk));
      response.on('end', () => {
        try {
          done(response.statusCode, JSON.parse(text));
        } catch {
          done(response.statusCode, { error: { code: 'NOT_JSON', message: text.slice(0, 200) } });
        }
      });
      response.on('error', (error) =>
        done(0, { error: { code: 'CONNECTION_LOST', message: error.message } }),
      );
    });
    request.on('timeout', () => {
      request.destroy();
      done(0, { error: { code: 'TIMEOUT', message: `no answer within ${timeoutMs} ms` } });
    });
    request.on('error', (error) =>
      done(0, { error: { code: 'CONNECTION_LOST', message: error.message } }),
    );
  });
}

const until = Date.now() + maxMs;
for (let calls = 0; calls < maxCalls && Date.now() < until && !stopping; calls++) {
  const record = await call();
  process.stdout.write(`${JSON.stringify(record)}\n`);
  await new Promise((resolve) => setTimeout(resolve, intervalMs));
}
