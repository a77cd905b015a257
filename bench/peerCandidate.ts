/**
 * One candidate of the peer benchmark (bench/peer.ts): a process that campaigns in etcd3's own
 * `Election`, written the way a careful user of that library would write it.
 *
 *   node --import tsx bench/peerCandidate.ts <endpoints,comma-separated> <election> <ttl s> <value>
 *
 * It speaks to the benchmark in stdout lines, one event per line:
 * - `elected <value>` when its campaign wins (the library's `elected` event);
 * - `error <message>` when its campaign fails (it then campaigns again, as the library's docs
 *   advise);
 * - `resigned <ms>` after SIGTERM, once `resign()` (a lease revoke) has returned, with how long
 *   that took; the process then exits 0;
 * - `renewed <ms>` each time etcd answers a keep-alive of its campaign's lease (the Lease's
 *   `keepaliveSucceeded` event), with how long before that answer the keep-alive was sent
 *   (`keepaliveFired`): the benchmark kills a crash trial's leader at a set time after such a
 *   renewal (bench/crashPhase.ts). This is instrumentation, not what a user would write.
 *
 * SIGKILL needs no code: the lease simply stops being kept alive and etcd expires it.
 */
import { performance } from 'node:perf_hooks';
import { Etcd3, type Campaign, type Lease } from 'etcd3';

/** After a failed campaign, before the next: the library's docs wait 5 s; a benchmark cannot. */
const RECAMPAIGN_DELAY_MS = 1000;

const [endpoints, electionName, ttlArg, value] = process.argv.slice(2);
const ttlSeconds = Number(ttlArg);
if (
  endpoints === undefined ||
  electionName === undefined ||
  value === undefined ||
  !Number.isInteger(ttlSeconds) ||
  ttlSeconds < 1
) {
  console.error('usage: peerCandidate.ts <endpoints> <election> <ttl seconds> <value>');
  process.exit(2);
}

const client = new Etcd3({ hosts: endpoints.split(',') });
// The TTL is the election's, not the campaign's: etcd3 defaults it to 60 s, so a user who
// leaves it out waits a minute for a crashed leader's successor.
const election = client.election(electionName, ttlSeconds);
let campaign: Campaign | undefined;
let stopping = false;

/**
 * The campaign's lease. etcd3 1.1.2 keeps it in a field that TypeScript calls private and
 * offers no other way to it; it is only listened to here, never used.
 */
function leaseOf(current: Campaign): Lease {
  return (current as unknown as { lease: Lease }).lease;
}

/**
 * Prints `renewed <ms>` for each keep-alive answer. The Lease sends its keep-alives on one
 * stream (the first when the stream opens, then one every TTL/3) and etcd answers them in
 * order, so each answer is for the oldest keep-alive sent and not yet answered on the stream.
 */
function reportRenewals(lease: Lease): void {
  let sent: number[] = [];
  lease.on('keepaliveEstablished', () => (sent = []));
  lease.on('keepaliveFired', () => sent.push(performance.now()));
  lease.on('keepaliveSucceeded', () => {
    const sentAt = sent.shift();
    if (sentAt !== undefined) console.log(`renewed ${(performance.now() - sentAt).toFixed(1)}`);
  });
}

function campaignNow(): void {
  const current = election.campaign(value!);
  campaign = current;
  reportRenewals(leaseOf(current));
  current.on('elected', () => console.log(`elected ${value}`));
  current.on('error', (error) => {
    // The campaign is over (its lease is lost or a write failed): stop acting as leader, which
    // this process never does anyway, and stand again unless it is shutting down.
    console.log(`error ${error.message.replace(/\s+/g, ' ')}`);
    if (campaign === current && !stopping) setTimeout(campaignNow, RECAMPAIGN_DELAY_MS);
  });
}

process.once('SIGTERM', () => {
  stopping = true;
  const started = performance.now();
  // resign() revokes the lease, which deletes the candidate's key: the next in line is elected
  // without waiting for the TTL.
  void (campaign?.resign() ?? Promise.resolve()).then(
    () => {
      console.log(`resigned ${(performance.now() - started).toFixed(1)}`);
      client.close();
      process.exit(0);
    },
    (error: unknown) => {
      console.log(`error resign failed: ${String(error)}`);
      client.close();
      process.exit(1);
    },
  );
});

campaignNow();
