/**
 * Which strategy chooses the leader of this member's pools: the one a library user passes,
 * else the one ELECTION_STRATEGY names (`oldest` by default; election/strategy.ts holds the
 * strategies). One strategy serves every pool of the member and is declared in each of its
 * member records, so that the pool can tell when its members disagree (strategyAgreement.ts).
 */
import type { Config } from '../config/config.js';
import {
  avoid,
  loadModuleStrategy,
  oldest,
  weighted,
  type LeaderStrategy,
} from '../election/strategy.js';

/**
 * Resolves to `given` when set, else to the configured strategy. With ELECTION_STRATEGY=module
 * this imports the user's module: start-up waits for the import, and a module that does not
 * load (or exports no strategy) rejects.
 */
export async function chooseStrategy(
  given: LeaderStrategy | undefined,
  settings: Config['strategy'],
): Promise<LeaderStrategy> {
  return given ?? (await strategyFor(settings));
}

/** The strategy ELECTION_STRATEGY names, with its settings. */
function strategyFor(settings: Config['strategy']): Promise<LeaderStrategy> | LeaderStrategy {
  switch (settings.name) {
    case 'oldest':
      return oldest;
    case 'weighted':
      return weighted;
    case 'avoid':
      return avoid({ labels: settings.avoidLabels, pools: settings.avoidPools });
    case 'module':
      return loadModuleStrategy(settings.modulePath!);
  }
}
