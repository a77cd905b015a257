/**
 * The probes an orchestrator polls: GET /healthz (the process answers; who it is) and
 * GET /readyz (200 once registered and synced in every pool, 503 otherwise or while draining,
 * with the reason per pool). Neither reads etcd: both answer from the elections' state.
 */
import express from 'express';
import type { PoolRoutes } from './poolAddress.js';

/** `draining`: true once graceful shutdown began, which makes /readyz 503. */
export function probeRoutes(pools: readonly PoolRoutes[], draining: () => boolean): express.Router {
  const router = express.Router();

  router.get('/healthz', (_req, res) => {
    // Who answers: a member checks its own ADVERTISE_URL against these at start-up.
    res.json({ status: 'ok', member: pools[0]?.election.memberId, pid: process.pid });
  });

  router.get('/readyz', (_req, res) => {
    const each = pools.map(({ election }) => ({
      pool: election.pool,
      ready: election.isReady(),
      registered: election.memberKey !== undefined,
      synced: election.view.synced,
      etcdReachable: election.view.reachable,
      leaseTimeLeftMs: election.leaseTimeLeftMs(),
    }));
    const ready = !draining() && each.every((pool) => pool.ready);
    res.status(ready ? 200 : 503).json({
      ready,
      registered: each.every((pool) => pool.registered),
      synced: each.every((pool) => pool.synced),
      etcdReachable: each.every((pool) => pool.etcdReachable),
      leaseTimeLeftMs: Math.min(...each.map((pool) => pool.leaseTimeLeftMs)),
      draining: draining(),
      pools: each,
    });
  });

  return router;
}
