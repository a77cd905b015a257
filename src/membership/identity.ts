/**
 * Who answers at a member's URL: its `/healthz` names the member and its process id. Election
 * asks it to tell a live incarnation of a MEMBER_ID from a dead one; a member asks its own
 * ADVERTISE_URL at start-up. Bounded by the caller's timeout (milliseconds); never throws.
 */

/**
 * `route` (a path without its leading slash) at a member's URL, under the URL's own path: a
 * library user may mount the member's routes under a prefix, and its URL then ends with it
 * (`http://10.0.0.7:3000/pool` → `http://10.0.0.7:3000/pool/healthz`).
 */
export function memberRoute(url: string, route: string): URL {
  return new URL(route, url.endsWith('/') ? url : `${url}/`);
}

export type Answer =
  | { reached: true; member: unknown; pid: unknown }
  | { reached: false; reason: string };

export async function whoAnswers(url: string, timeoutMs: number): Promise<Answer> {
  try {
    const res = await fetch(memberRoute(url, 'healthz'), {
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!res.ok) return { reached: false, reason: `HTTP ${res.status}` };
    const body = (await res.json()) as { member?: unknown; pid?: unknown };
    return { reached: true, member: body.member, pid: body.pid };
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const reason =
      cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
    return { reached: false, reason };
  }
}

/**
 * Whether process `pid` of member `id` answers at `url` (500 ms bound). A member of an older
 * version, whose /healthz names nobody, counts as answering if it answers.
 */
export async function answersAs(url: string, id: string, pid: number): Promise<boolean> {
  const answer = await whoAnswers(url, 500);
  return (
    answer.reached && (answer.member === undefined || (answer.member === id && answer.pid === pid))
  );
}

/**
 * Asks our own ADVERTISE_URL who answers there, once at start-up (2 s bound; the caller does
 * not wait for it): where it does not reach this process, the others cannot forward work to
 * it when it leads. Warns with the reason; silent when all is well.
 */
export async function checkAdvertiseUrl(
  self: { url: string; memberId: string },
  logger: { warn: (fields: object, message: string) => void },
): Promise<void> {
  const answer = await whoAnswers(self.url, 2000);
  let problem: string | undefined;
  if (!answer.reached) problem = answer.reason;
  else if (answer.member !== self.memberId || answer.pid !== process.pid) {
    problem = `another process answers there (member ${String(answer.member)}, pid ${String(answer.pid)})`;
  }
  if (problem !== undefined) {
    logger.warn(
      { url: self.url, problem },
      'ADVERTISE_URL does not reach this member: the others could not forward work to it; check ADVERTISE_URL (or POD_IP and PORT)',
    );
  }
}
