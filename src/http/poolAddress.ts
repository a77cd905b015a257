/**
 * Which of the member's pools a request addresses: the pool named in /pools/:pool/..., else
 * the first pool of POOLS (the pool of /work, /simple-work, /pool and /resign).
 */
import type { RequestParamHandler, Response } from 'express';
import type { PoolElection } from '../election/election.js';
import { PoolError } from '../errors.js';
import type { WorkRouter } from '../work/router.js';

/** One pool this member belongs to, as the HTTP layer sees it. */
export interface PoolRoutes {
  election: PoolElection;
  router: WorkRouter;
}

export interface PoolAddress {
  /**
   * The `:pool` check, for `router.param('pool', ...)`: Express runs it once per request and
   * router, before any route with a :pool in its path. An unknown name is 404 NOT_FOUND.
   */
  param: RequestParamHandler;
  /** The pool a request addresses, once `param` has run (or the first pool without :pool). */
  of(res: Response): PoolRoutes;
}

export function poolAddress(pools: readonly PoolRoutes[]): PoolAddress {
  const byName = new Map(pools.map((pool) => [pool.election.pool, pool]));
  const firstPool = pools[0];
  if (!firstPool) throw new Error('a member belongs to at least one pool');
  return {
    param: (_req, res, next, name: string) => {
      const pool = byName.get(name);
      if (!pool) {
        next(new PoolError('NOT_FOUND', `no pool ${JSON.stringify(name)} on this member`));
        return;
      }
      res.locals.pool = pool;
      next();
    },
    of: (res) => (res.locals.pool as PoolRoutes | undefined) ?? firstPool,
  };
}
