/**
 * ETCD_ENDPOINTS against etcd's own member list, checked every ETCD_MEMBERSHIP_CHECK_MS.
 *
 * When ETCD_ENDPOINTS name etcd's members directly, the member follows the list, as etcd's Go
 * client does with its auto-sync: an etcd member added later is used, a removed one is no
 * longer dialled (endpoints.ts changes the running client; `follow` does it for the keep-alive
 * thread too). ETCD_ENDPOINTS itself cannot change, and a member that restarts starts from it
 * again, so a warning names the URLs to put there.
 *
 * When none of ETCD_ENDPOINTS is a member's client URL, they are a proxy or a load balancer in
 * front of etcd: nothing is compared and nothing changes.
 */
import type { Etcd3, IMember } from 'etcd3';
import type { Logger } from 'pino';
import { describeEtcdError } from './access.js';
import { hostOf, type EndpointChange } from './endpoints.js';

export interface EndpointDrift {
  /** Endpoints no etcd member serves any more (removed, or never one of this cluster). */
  unknown: string[];
  /** Client URLs of voting members that ETCD_ENDPOINTS lacks (the first URL of each). */
  missing: string[];
}

/** An endpoint as endpoints.ts identifies it, with its scheme: written two ways, it compares equal. */
function normalise(url: string): string {
  return `${schemeOf(url)}://${hostOf(url)}`;
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
 * The endpoints to use: one client URL per voting, started member, with ETCD_ENDPOINTS' scheme
 * (the client's TLS settings are for that scheme) — the one ETCD_ENDPOINTS already lists if
 * any, else its first such URL. A loopback URL (127.0.0.0/8, ::1, localhost) is used only when
 * ETCD_ENDPOINTS dial loopback themselves: elsewhere it names the member's own host, not
 * etcd's. A member with no usable URL is left out. Undefined when ETCD_ENDPOINTS front etcd
 * (see `endpointDrift`) or no member is usable.
 */
export function memberEndpoints(
  endpoints: readonly string[],
  members: readonly { clientURLs: string[]; isLearner?: boolean }[],
): string[] | undefined {
  const voting = members.filter((member) => !member.isLearner && member.clientURLs.length > 0);
  const listed = new Set(endpoints.map(normalise));
  const served = new Set(voting.flatMap((member) => member.clientURLs.map(normalise)));
  if (![...listed].some((endpoint) => served.has(endpoint))) return undefined;
  const schemes = new Set(endpoints.map(schemeOf));
  const loopbackToo = endpoints.some(isLoopback);
  const usable = (url: string) => schemes.has(schemeOf(url)) && (loopbackToo || !isLoopback(url));
  const chosen = voting
    .map(
      ({ clientURLs }) =>
        clientURLs.find((url) => listed.has(normalise(url)) && usable(url)) ??
        clientURLs.find(usable),
    )
    .filter((url): url is string => url !== undefined);
  const unique = [...new Map(chosen.map((url) => [normalise(url), url])).values()];
  return unique.length > 0 ? unique : undefined;
}

function schemeOf(url: string): string {
  return url.split('://')[0]!.toLowerCase();
}

function isLoopback(url: string): boolean {
  try {
    const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
    return host === 'localhost' || host === '::1' || /^127\./.test(host);
  } catch {
    return false;
  }
}

/**
 * Compares every `intervalMs` (milliseconds; the timer is unref'd and never blocks)
 * and logs a warning when the drift appears or changes, and once when it is gone. With
 * `follow`, hands it the endpoints to use whenever they change (`memberEndpoints`); if it
 * throws, following stops with one warning. A failed member list (etcd unreachable) is
 * skipped: other checks report that. Returns a function that stops it.
 */
export function watchEtcdMembership(
  etcd: Etcd3,
  endpoints: readonly string[],
  logger: Logger,
  intervalMs: number,
  follow?: (endpoints: string[]) => EndpointChange,
): () => void {
  let reported = '';
  let following = [...endpoints];
  let followFailed = false;
  const check = async () => {
    let drift: EndpointDrift;
    let members: IMember[];
    try {
      members = (await etcd.cluster.memberList({})).members;
      drift = endpointDrift(endpoints, members);
    } catch (error) {
      logger.debug({ err: describeEtcdError(error) }, 'could not list etcd members');
      return;
    }
    const target = follow && !followFailed && memberEndpoints(following, members);
    if (target && !sameEndpoints(target, following)) {
      try {
        const change = follow(target);
        following = target;
        logger.info({ ...change, endpoints: target }, "etcd endpoints follow etcd's member list");
      } catch (error) {
        followFailed = true;
        logger.warn(
          { err: error instanceof Error ? error.message : String(error) },
          "cannot change the etcd endpoints while running; they stay as they are, and etcd's member list is no longer followed",
        );
      }
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
      "ETCD_ENDPOINTS and etcd's member list differ: list every member's client URL there, so that a restart finds them",
    );
  };
  const timer = setInterval(() => void check(), intervalMs);
  timer.unref();
  void check();
  return () => clearInterval(timer);
}

function sameEndpoints(a: readonly string[], b: readonly string[]): boolean {
  const left = new Set(a.map(normalise));
  const right = new Set(b.map(normalise));
  return left.size === right.size && [...right].every((url) => left.has(url));
}
