/**
 * The teaching path: GET and POST /simple-work and /pools/:pool/simple-work, the naive routing
 * of the Elixir demo. Every call reads the members from etcd and sends the work to the oldest
 * that may lead (WorkRouter.routeSimply): one etcd range per call, where /work makes none. It
 * is there to be compared with /work, on the status page and in
 * `service_pool_work_etcd_requests_total`; a production member can leave it out
 * (SIMPLE_WORK=false, or the `simpleWork` option), since each call costs etcd a read.
 *
 * Served like /work (workRoutes.ts): the same validation, forwarding token, metrics and
 * admission bound.
 */
import type express from 'express';
import type { ServeWorkRoute } from './workRoutes.js';

/** The router of /simple-work and /pools/:pool/simple-work. */
export function simpleWorkRoutes(serve: ServeWorkRoute): express.Router {
  return serve('simple-work', (router, work) => router.routeSimply(work));
}
