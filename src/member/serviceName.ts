/**
 * The service this member runs, which names what its pools belong to: a pool admits members
 * of one service only (election/poolIdentity.ts).
 */
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { DEFAULT_SERVICE_NAME } from '../config/variables.js';

/**
 * `given` when set, else SERVICE_NAME. Warns when a work handler of the user's own runs under
 * the default name: another service on the same etcd, also left at the default, could then
 * join its pool.
 */
export function serviceName(
  given: string | undefined,
  config: Pick<Config, 'service'>,
  ownHandler: boolean,
  logger: Logger,
): string {
  const service = given ?? config.service;
  if (ownHandler && service === DEFAULT_SERVICE_NAME) {
    logger.warn(
      { service },
      'a work handler of your own runs under the default service name: set SERVICE_NAME (or the service option) to your service, so that another service on this etcd cannot share its pool',
    );
  }
  return service;
}
