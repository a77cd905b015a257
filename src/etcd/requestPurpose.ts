/**
 * Which work route an etcd request is sent for, if any: the request hook of the etcd client
 * (connectEtcd's `onRequest`) runs in the async context of the code that made the call, so a
 * request made while executing work for `/simple-work` is attributed to it, and one made by
 * the registration, the keep-alives, the watch or the reconciling read to none (the
 * background). It is how the status page and `service_pool_work_etcd_requests_total` show what
 * each route costs in etcd, apart from what a member costs anyway.
 *
 * Only execution runs in such a context (the router's `execute`: the handler, its tickets and
 * fenced writes); routing and forwarding make no etcd request, and `/simple-work`'s one read
 * is counted where it is made. Node's AsyncLocalStorage makes every promise of the process pay
 * once it is first used: a member that only forwards never turns it on.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export type WorkRoute = 'work' | 'simple-work';

const routes = new AsyncLocalStorage<WorkRoute>();

/** Runs `serve` (and every etcd request it makes, awaited or not) as done for `route`. */
export function forWorkRoute<T>(route: WorkRoute, serve: () => T): T {
  return routes.run(route, serve);
}

let warmed = false;

/**
 * Uses the storage once and turns it off again: its first use compiles the async hooks behind
 * it (~0.35 ms of a cold process), which the first request a new leader executes — in the
 * middle of a handover — would otherwise pay; turned off, no promise pays for it until then.
 * Synchronous; once per process. Call it before any work executes: `disable()` would drop the
 * route of an execution under way (the router calls it as it is made, before it routes).
 */
export function warmWorkRoutes(): void {
  if (warmed) return;
  warmed = true;
  void routes.run('work', () => Promise.resolve());
  routes.disable();
}

/** The route the current code serves, or undefined in the background. */
export function currentWorkRoute(): WorkRoute | undefined {
  return routes.getStore();
}
