/**
 * The pools a member leads, published in its member record of every pool (`leads`), so that
 * another pool's `avoid` strategy can see it ("not already leading pool Y"). Writes go through
 * each election's `updateRecord` (a compare-and-swap on our own key); nothing blocks.
 */
import type { PoolElection } from './election.js';

/** How long after a leadership change this member rewrites `leads` in its records. */
const PUBLISH_LEADS_AFTER_MS = 200;

/**
 * Keeps `leads` in every pool's member record equal to the pools this member leads, so that
 * the `avoid` strategy of another pool can see it ("not already leading pool Y").
 */
export function publishLeadership(elections: PoolElection[]): void {
  let published = '';
  let publishing = false;
  const publish = async () => {
    const leads = elections.filter((e) => e.leader()?.self).map((e) => e.pool);
    if (publishing || leads.join() === published) return;
    publishing = true;
    try {
      const written = await Promise.all(elections.map((e) => e.updateRecord({ leads })));
      if (!written.every(Boolean)) {
        setTimeout(() => void publish(), 1000).unref(); // etcd refused: try again
        return;
      }
      published = leads.join();
    } finally {
      publishing = false;
    }
    void publish(); // leadership may have moved while we wrote
  };
  // Not at once: a new leader's first writes (its claim, then its first ticket block) are on
  // the path of the first request after a failover, and this write would queue in etcd beside
  // them. Another pool's `avoid` strategy can wait this long to see the change.
  let scheduled: NodeJS.Timeout | undefined;
  const schedule = () => {
    scheduled ??= setTimeout(() => {
      scheduled = undefined;
      void publish();
    }, PUBLISH_LEADS_AFTER_MS);
    scheduled.unref();
  };
  for (const election of elections) election.on('change', schedule);
}
