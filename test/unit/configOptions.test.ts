/**
 * `configFrom`: the member's settings as typed fields make the same `Config` as the same
 * settings as environment variables, with the same defaults and checks, and a refusal names
 * the field.
 */
import { expect } from 'chai';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { configFrom, type ConfigOptions } from '../../src/config/configOptions.js';

const host = { hostname: 'box', pid: 42 };

function refusal(options: ConfigOptions): ConfigError {
  try {
    configFrom(options, host);
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration from typed fields (configFrom)', () => {
  it('has the defaults of loadConfig and does not read the environment', () => {
    process.env.POOL = 'from-the-environment';
    try {
      expect(configFrom({}, host)).to.deep.equal(loadConfig({}, host));
    } finally {
      delete process.env.POOL;
    }
  });

  it('makes from typed fields the config the same variables make', () => {
    const typed = configFrom(
      {
        serviceName: 'orders',
        pools: ['orders', 'billing'],
        etcdEndpoints: ['http://e0:2379', 'http://e1:2379'],
        leaseTtlSeconds: 7,
        etcdCallTimeoutMs: 900,
        candidate: false,
        weight: 2.5,
        labels: { zone: 'a', disk: 'ssd' },
        electionStrategy: 'avoid',
        avoidLabels: { disk: '' },
        avoidPools: [],
        adminToken: undefined,
        logLevel: 'warn',
      },
      host,
    );
    const fromVariables = loadConfig(
      {
        SERVICE_NAME: 'orders',
        POOLS: 'orders,billing',
        ETCD_ENDPOINTS: 'http://e0:2379,http://e1:2379',
        LEASE_TTL_SECONDS: '7',
        ETCD_CALL_TIMEOUT_MS: '900',
        CANDIDATE: 'false',
        WEIGHT: '2.5',
        LABELS: 'zone=a,disk=ssd',
        ELECTION_STRATEGY: 'avoid',
        AVOID_LABELS: 'disk',
        LOG_LEVEL: 'warn',
      },
      host,
    );
    expect(typed).to.deep.equal(fromVariables);
    expect(typed.lease.ttlSeconds).to.equal(7);
    expect(typed.strategy.avoidLabels).to.deep.equal({ disk: '' });
  });

  it('names the field of a bad value, with the message of its variable', () => {
    const error = refusal({ leaseTtlSeconds: 1, pool: 'Orders!' });
    expect(error.issues.map((issue) => [issue.field, issue.variable, issue.value])).to.deep.equal([
      ['pool', 'POOL', 'Orders!'],
      ['leaseTtlSeconds', 'LEASE_TTL_SECONDS', 1],
    ]);
    expect(error.message.split('\n')).to.deep.equal([
      'invalid pool="Orders!": expected a pool name of 1-63 lowercase letters, digits, "-" or "_", starting and ending with a letter or digit',
      'invalid leaseTtlSeconds=1: expected a whole number of seconds from 2 to 3600',
    ]);
  });

  it('checks settings against each other, naming fields, and a default left out when it is the one wrong', () => {
    expect(refusal({ etcdCallTimeoutMs: 6000 }).message).to.equal(
      'invalid etcdCallTimeoutMs=6000: expected less than the lease TTL (5000 ms)',
    );
    expect(refusal({ shutdownTimeoutMs: 200 }).message).to.equal(
      'invalid shutdownLingerMs=300: expected less than shutdownTimeoutMs (200 ms)',
    );
    expect(refusal({ etcdUsername: 'root' }).message).to.equal(
      'invalid etcdPassword=(unset): expected a value, because etcdUsername is set',
    );
  });

  it('refuses what its variable could not tell apart, unknown fields and empty required lists; hides secrets', () => {
    expect(refusal({ pools: ['a,b'] }).message).to.equal(
      'invalid pools=["a,b"]: expected a list of strings without commas in them',
    );
    expect(refusal({ labels: { zone: 'a,b=c' } }).message).to.equal(
      'invalid labels={"zone":"a,b=c"}: expected labels of strings without "," or "=" in them',
    );
    expect(refusal({ leaseTtl: 5 } as ConfigOptions).issues[0]).to.include({
      field: 'leaseTtl',
      expected: 'expected a field of ConfigOptions',
    });
    expect(refusal({ etcdEndpoints: [] }).issues[0]).to.include({ field: 'etcdEndpoints' });
    expect(refusal({ adminToken: 'short' }).message).to.equal(
      'invalid adminToken=(hidden, 5 characters): expected a secret of at least 16 characters',
    );
  });
});
