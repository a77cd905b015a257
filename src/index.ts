/**
 * The library API: embed a pool member in your own service (docs/library.md).
 *
 *   const member = await PoolMember.start({ config: configFrom({ pool: 'orders' }), handler });
 *   member.leadership({ onStartedLeading: (term, signal) => ... });
 *   await member.shutdown();
 *
 * Every export here has a doc comment and a line in docs/library.md's reference
 * (test/unit/libraryDocs.test.ts).
 */
export {
  loadConfig,
  ConfigError,
  isConfigError,
  type Config,
  type ConfigHost,
  type ConfigIssue,
} from './config/config.js';
export { configFrom, type ConfigOptions } from './config/configOptions.js';
export { describeVariables } from './config/variables.js';
export { PoolMember, type PoolMemberOptions } from './member.js';
export type { Election } from './election/electionApi.js';
export type { LeaderInfo } from './election/leaderLog.js';
export type { LeadershipCallbacks } from './election/leadership.js';
export {
  LeadershipEndedError,
  isLeadershipEnded,
  type LeadershipEndReason,
} from './election/leadershipEnd.js';
export type { MemberView } from './election/poolView.js';
export { ServiceConflictError, isServiceConflict } from './election/poolIdentity.js';
export {
  oldest,
  weighted,
  avoid,
  loadModuleStrategy,
  describeStrategy,
  type LeaderStrategy,
  type StrategyContext,
  type StrategyMember,
} from './election/strategy.js';
export {
  echoHandler,
  type WorkHandler,
  type WorkContext,
  type WorkRequest,
} from './work/handler.js';
/**
 * Every error of the library is a `PoolError` with a `code`; the guards narrow to a class or a
 * code (`isPoolError(error, 'NO_LEADER')`), and `isRetryable` says a request certainly did not
 * execute and may be sent again.
 */
export {
  PoolError,
  NotLeaderError,
  NoLeaderError,
  isPoolError,
  isNotLeader,
  isRetryable,
  type ErrorCode,
  type HttpErrorCode,
  type ProcessErrorCode,
} from './errors.js';
export type { MemberRecord } from './membership/memberRecord.js';
export {
  EtcdAccessError,
  isEtcdAccessError,
  describeEtcdError,
  type EtcdProblem,
} from './etcd/access.js';
export { jsonReplacer, toJsonSafe, type JsonSafe } from './util/jsonSafe.js';
