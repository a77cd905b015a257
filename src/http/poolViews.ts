/**
 * GET /pool (the first pool), /pools/:pool and /pools (every pool): each pool as this member
 * sees it (poolDescription.ts), with whether its leader answered the last forward.
 */
import express from 'express';
import { describePool } from './poolDescription.js';
import type { PoolAddress, PoolRoutes } from './poolAddress.js';

export function poolViewRoutes(pools: readonly PoolRoutes[], address: PoolAddress): express.Router {
  const router = express.Router();
  router.param('pool', address.param);

  router.get(['/pool', '/pools/:pool'], (_req, res) => {
    const pool = address.of(res);
    res.json(describePool(pool.election, pool.router));
  });

  router.get('/pools', (_req, res) => {
    res.json(pools.map((pool) => describePool(pool.election, pool.router)));
  });

  return router;
}
