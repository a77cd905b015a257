/**
 * The start-up diagnosis of etcd: one bounded access check before a member joins, and, while
 * etcd does not answer, an explanation in plain words in the log until it does.
 *
 * A refusal that only an operator can fix (a wrong password, a missing role, an untrusted
 * certificate) stops start-up with one line naming the cause: the process exits 1 and
 * Kubernetes shows a crash loop with that line, where a member retrying forever would look
 * merely not ready. An etcd that does not answer is different: members must tolerate etcd
 * being down at start-up, so the member stays up, not ready, says why, and joins once etcd
 * answers (its election retries by itself; this only explains).
 */
import type { Etcd3 } from 'etcd3';
import type { Logger } from 'pino';
import { retry, type BackoffSchedule } from '../util/backoff.js';
import { monotonicNow } from '../util/time.js';
import { checkEtcdAccess, EtcdAccessError, type EtcdProblem } from './access.js';
import type { EtcdOptions } from './client.js';

/** While etcd stays unreachable, its reason is logged again this often, not only on change. */
const REMIND_EVERY_MS = 30_000;
/** Between two checks: 0.5 s, then 1 s, then every 2 s. */
const RECHECK_BACKOFF: BackoffSchedule = { initialMs: 500, maxMs: 2000 };

export interface EtcdDiagnosisOptions {
  /** What the check reads (`prefix`) and may write (`key`): the first pool's keys. */
  scope: { prefix: string; key: string };
  logger: Logger;
  /** Once true, the explanation stops: the member got in, whatever the last check said. */
  isReady: () => boolean;
  /** Aborted when graceful shutdown begins: the explanation ends at its next check. */
  signal: AbortSignal;
}

/**
 * Checks once that etcd answers and lets this member in (checkEtcdAccess: bounded by the call
 * deadline). Rejects with `EtcdAccessError` when etcd refuses for good. Resolves true when
 * all is well; false when etcd has a passing problem, which is then explained in the
 * background (see `explainUntilEtcdAnswers`) while the caller goes on.
 */
export async function diagnoseEtcdAtStart(
  etcd: Etcd3,
  etcdOptions: EtcdOptions,
  options: EtcdDiagnosisOptions,
): Promise<boolean> {
  const check = () => checkEtcdAccess(etcd, etcdOptions, options.scope);
  const problem = await check();
  if (problem?.permanent) throw new EtcdAccessError(problem);
  if (problem) void explainUntilEtcdAnswers(problem, check, etcdOptions.endpoints, options);
  return problem === undefined;
}

/**
 * While etcd does not answer after start-up, logs why in plain words — at first, whenever
 * the reason changes, and every 30 s — until it answers, the member is ready or `signal`
 * aborts. Checks again after 0.5 s, then 1 s, then every 2 s; the waits do not keep the
 * process alive, and `signal` ends one at once. A permanent refusal found now (etcd came up
 * but rejects us) is logged as an error: past start-up the member does not exit on its own, it
 * stays not ready. Never rejects.
 */
async function explainUntilEtcdAnswers(
  first: EtcdProblem,
  check: () => Promise<EtcdProblem | undefined>,
  endpoints: readonly string[],
  { logger, isReady, signal }: EtcdDiagnosisOptions,
): Promise<void> {
  const report = (problem: EtcdProblem) =>
    logger[problem.permanent ? 'error' : 'warn'](
      { endpoints, problem: problem.kind },
      `${problem.message} — not ready; retrying in the background`,
    );
  report(first);
  let last = { message: first.message, at: monotonicNow() };
  try {
    // The start-up check was the first try: wait before the next.
    await retry(
      async () => {
        const problem = isReady() ? undefined : await check();
        if (signal.aborted) return;
        if (!problem) {
          logger.info({ endpoints }, 'etcd answers');
          return;
        }
        if (problem.message !== last.message || monotonicNow() - last.at >= REMIND_EVERY_MS) {
          report(problem);
          last = { message: problem.message, at: monotonicNow() };
        }
        throw new Error(problem.message); // not yet: check again after the next delay
      },
      // Unreferenced: these waits must not keep a library user's process alive.
      { schedule: RECHECK_BACKOFF, signal, waitFirst: true, unref: true },
    );
  } catch {
    // retry() rejects only when `signal` aborted: shutdown ends the explanation.
  }
}
