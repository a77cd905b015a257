/**
 * The admin routes, enabled by ADMIN_TOKEN and guarded by `Authorization: Bearer <ADMIN_TOKEN>`:
 * POST /resign and /pools/:pool/resign make this member give up the pool's leadership, if it
 * holds it (the election's `resign`: a fenced delete of its claim; it rejoins as the youngest).
 * The answer waits for the re-registration at most the election's `resignBoundMs` (3 × the
 * etcd call timeout): past it, 503 ETCD_UNAVAILABLE says that this member stopped leading and
 * that the rest goes on in the background.
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
    const resigned = await election.resign().catch((error: unknown) => {
      const boundMs = election.resignBoundMs;
      logger.warn({ pool: election.pool, boundMs }, 'resign not confirmed by etcd in time');
      throw new PoolError(
        'ETCD_UNAVAILABLE',
        `this member stopped leading pool ${election.pool}, but etcd did not confirm the resign within ${boundMs} ms; deleting the claim and registering again go on in the background (without etcd the claim expires with its lease)`,
        { pool: election.pool, resigned: true, boundMs },
        { cause: error },
      );
    });
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
