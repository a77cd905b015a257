/**
 * ETCD_ENDPOINTS against etcd's own member list. The etcd client cannot change its endpoints
 * once built, so an etcd member added later is not used, and a removed one is still dialled
 * (cheaply: a failed stream moves to another endpoint within milliseconds), until
 * ETCD_ENDPOINTS changes and the member restarts. A periodic check says so, with the URLs to
 * put there, instead of leaving an operator to find out at the next outage.
 */
import type { Etcd3 } from 'etcd3';
import type { Logger } from 'pino';
import { describeEtcdError } from './access.js';

export interface EndpointDrift {
  /** Endpoints no etcd member serves any more (removed, or never one of this cluster). */
  unknown: string[];
  /** Client URLs of voting members that ETCD_ENDPOINTS lacks (the first URL of each). */
  missing: string[];
}

/** The same endpoint written two ways (case of the host, a trailing slash) compares equal. */
function normalise(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}`.toLowerCase();
  } catch {
    return url.replace(/\/+$/, '').toLowerCase();
  }
}

/**
 * The drift, when ETCD_ENDPOINTS name etcd's members directly. When none of them is a member's
 * client URL, they are a proxy or a load balancer in front of etcd: nothing to compare, no
 * drift.
 */
export function endpointDrift(
  endpoints: readonly string[],
  members: readonly { clientURLs: string[]; isLearner?: boolean }[],
): EndpointDrift {
  const voting = members.filter((member) => !member.isLearner && member.clientURLs.length > 0);
  const served = new Set(voting.flatMap((member) => member.clientURLs.map(normalise)));
  const listed = new Set(endpoints.map(normalise));
  if (![...listed].some((endpoint) => served.has(endpoint))) return { unknown: [], missing: [] };
  return {
    unknown: endpoints.filter((endpoint) => !served.has(normalise(endpoint))),
    missing: voting
      .filter((member) => !member.clientURLs.some((url) => listed.has(normalise(url))))
      .map((member) => member.clientURLs[0]!),
  };
}

/**
 * Compares every `intervalMs` (milliseconds; the timer is unref'd and never blocks) and logs a
 * warning when the drift appears or changes, and once when it is gone. A failed member list
 * (etcd unreachable) is skipped: other checks report that. Returns a function that stops it.
 */
export function watchEtcdMembership(
  etcd: Etcd3,
  endpoints: readonly string[],
  logger: Logger,
  intervalMs: number,
): () => void {
  let reported = '';
  const check = async () => {
    let drift: EndpointDrift;
    try {
      drift = endpointDrift(endpoints, (await etcd.cluster.memberList({})).members);
    } catch (error) {
      logger.debug({ err: describeEtcdError(error) }, 'could not list etcd members');
      return;
    }
    const now = JSON.stringify(drift);
    if (now === reported) return;
    const wasDrifting =
      reported !== '' && reported !== JSON.stringify({ unknown: [], missing: [] });
    reported = now;
    if (drift.unknown.length === 0 && drift.missing.length === 0) {
      if (wasDrifting) logger.info({ endpoints }, "ETCD_ENDPOINTS match etcd's members again");
      return;
    }
    logger.warn(
      { ...drift, endpoints },
      "ETCD_ENDPOINTS and etcd's member list differ: list every member's client URL there and restart the members one by one",
    );
  };
  const timer = setInterval(() => void check(), intervalMs);
  timer.unref();
  void check();
  return () => clearInterval(timer);
}
