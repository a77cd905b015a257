/**
 * The admin routes, enabled by ADMIN_TOKEN and guarded by `Authorization: Bearer <ADMIN_TOKEN>`:
 * POST /resign and /pools/:pool/resign make this member give up the pool's leadership, if it
 * holds it (the election's `resign`: a fenced delete of its claim; it rejoins as the youngest).
 */
import express from 'express';
import type { Logger } from 'pino';
import { PoolError } from '../errors.js';
import { bearerToken, secretMatches } from './auth.js';
import type { PoolAddress } from './poolAddress.js';

export function adminRoutes(options: {
  address: PoolAddress;
  logger: Logger;
  /** Unset: every admin route answers 404 NOT_FOUND. */
  adminToken: string | undefined;
}): express.Router {
  const { address, logger } = options;
  const router = express.Router();
  router.param('pool', address.param);

  router.post(['/resign', '/pools/:pool/resign'], async (req, res) => {
    if (options.adminToken === undefined) {
      throw new PoolError('NOT_FOUND', 'admin routes are disabled: set ADMIN_TOKEN to enable them');
    }
    if (!secretMatches(bearerToken(req.get('authorization')), options.adminToken)) {
      throw new PoolError('UNAUTHORIZED', 'admin routes need Authorization: Bearer <ADMIN_TOKEN>');
    }
    const { election } = address.of(res);
    const leader = election.leader();
    const resigned = await election.resign();
    logger.info({ pool: election.pool, resigned }, 'resign requested');
    res.json({
      pool: election.pool,
      resigned,
      previousLeader: leader?.id ?? null,
      ...(resigned
        ? {}
        : {
            reason: `this member is not the leader${leader ? `; ${leader.id} is, at ${leader.url}` : ''}`,
          }),
    });
  });

  return router;
}
