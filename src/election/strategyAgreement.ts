/**
 * Every member decides who should lead with its own strategy, so a member configured with
 * another one than the pool's (an `oldest` pool, a member with ELECTION_STRATEGY=weighted)
 * disagrees with the others: it may be passed over forever, or claim at a failover when the
 * others would not have chosen it — and nothing said why. This says it, in the member's log:
 * a warning once per change of what it disagrees with, and a line when it agrees again.
 */
import type { Logger } from 'pino';
import type { MemberRecord } from '../membership/memberRecord.js';
import { poolStrategyMember, strategyDiffers } from './poolIdentity.js';
import type { MemberView } from './poolView.js';

/** What this needs of an election: its view of the pool and its own record. */
export interface AgreementSource {
  view: { members: readonly MemberView[]; on(event: 'change', listener: () => void): unknown };
  memberRecord: Pick<MemberRecord, 'strategy'>;
}

/** Watches the pool for as long as the election lives; logs on every change of agreement. */
export function reportStrategyDisagreement(election: AgreementSource, logger: Logger): void {
  let reported: string | undefined;
  const check = () => {
    const owner = poolStrategyMember(election.view.members);
    const strategy = election.memberRecord.strategy;
    const poolStrategy = owner?.record.strategy;
    const disagreement = strategyDiffers(strategy, poolStrategy) ? poolStrategy : undefined;
    if (disagreement === reported) return;
    if (disagreement !== undefined) {
      logger.warn(
        { strategy, poolStrategy, member: owner?.record.id },
        `this member's strategy differs from the pool's: it would choose the leader by ${strategy}, the pool chooses by ${poolStrategy} (its oldest member, ${owner?.record.id}, says so). Give every member of the pool the same ELECTION_STRATEGY and settings`,
      );
    } else {
      logger.info({ strategy }, "this member's strategy agrees with the pool's again");
    }
    reported = disagreement;
  };
  election.view.on('change', check);
}
