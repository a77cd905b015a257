/**
 * The keep-alive thread's side of `LeaseThread` (leaseThread.ts, which says why it exists).
 *
 * It opens its own etcd connection with the member's endpoints, TLS and credentials, keeps
 * each lease it is given alive with the same `MemberLease` logic the main thread would use,
 * and reports renewals, failures and losses. It sends no keep-alive while the main thread has
 * not beaten for a whole TTL: a hung member must lose its lease as a dead one does.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { connectEtcd } from '../etcd/client.js';
import { setEndpoints } from '../etcd/endpoints.js';
import { monotonicNow } from '../util/time.js';
import { MemberLease } from './lease.js';
import type { FromWorker, ToWorker, WorkerData } from './leaseThread.js';

const port = parentPort;
if (!port)
  throw new Error('leaseThreadWorker.js runs only as a worker thread (see leaseThread.ts)');

const { etcd: options, startedAt } = workerData as WorkerData;
const send = (message: FromWorker) => port.postMessage(message);

// Buffers arrive as plain Uint8Arrays after the structured clone.
const asBuffer = (bytes: Uint8Array | undefined) =>
  bytes === undefined ? undefined : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
const tls = options.tls && {
  ca: asBuffer(options.tls.ca)!,
  ...(options.tls.cert ? { cert: asBuffer(options.tls.cert)! } : {}),
  ...(options.tls.key ? { key: asBuffer(options.tls.key)! } : {}),
};
const etcd = connectEtcd({
  ...options,
  ...(tls ? { tls } : {}),
  onRequest: (operation) => send({ type: 'request', operation }),
});

// Connect now, while the member starts: the first keep-alive must not pay for the connection
// (on a slow link that first answer comes late, and the answer window then widens for good).
etcd.maintenance.status().catch(() => undefined);

/** When the main thread was last seen running (monotonic ms, its own reading). */
let lastBeat = startedAt;
const leases = new Map<string, MemberLease>();

port.on('message', (message: ToWorker) => {
  if (message.type === 'beat') {
    // Timed by the sender: beats that queued while this thread was busy are not fresh.
    const silentMs = monotonicNow() - lastBeat;
    lastBeat = Math.max(lastBeat, message.at);
    // Back after a silence that stopped the keep-alives: renew now, not at the next tick.
    for (const lease of leases.values()) if (silentMs > lease.ttlMs) lease.keepAlive();
  } else if (message.type === 'keep') {
    const { id, ttlMs } = message;
    const lease = MemberLease.keep(etcd, id, ttlMs, message.deadline, message.callTimeoutMs, () => {
      const silentMs = monotonicNow() - lastBeat;
      return silentMs > ttlMs
        ? `the main thread has not answered for ${Math.round(silentMs)} ms; letting the lease run out`
        : undefined;
    });
    lease.on('renewed', (deadline, timeLeftMs, answeredAt) =>
      send({ type: 'renewed', id, deadline, timeLeftMs, answeredAt }),
    );
    lease.on('keepAliveFailed', (error) => send({ type: 'failed', id, message: error.message }));
    lease.on('lost', (reason) => {
      leases.delete(id);
      send({ type: 'lost', id, reason });
    });
    leases.set(id, lease);
  } else if (message.type === 'endpoints') {
    try {
      setEndpoints(etcd, message.urls);
    } catch {
      // The main thread changed its own client first and reported a refusal; this client
      // keeps its endpoints, and the main thread is the backup if they fail.
    }
  } else {
    leases.get(message.id)?.abandon();
    leases.delete(message.id);
  }
});
