/**
 * Every configuration variable with a type or a range, given a wrong value, stops start-up
 * with one line that names the variable and its value (a secret only by its length). The
 * table below is checked against the schema's own list, so a new variable without wrong
 * values here fails the suite. No etcd: a bad configuration never gets that far.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { expect } from 'chai';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { PARSED_VARIABLES } from '../../src/config/environment.js';
import { assertCliBuilt, DEFAULT_CLI_PATH } from '../../src/demo/memberProcess.js';

const host = { hostname: 'box', pid: 42 };

/** Free text by design: any non-blank value is taken as it is. */
const FREE_FORM = ['HOST'];

/** Shown as `(hidden, N characters)`, never as their value. */
const SECRETS = new Set(['ETCD_PASSWORD', 'FORWARD_TOKEN', 'ADMIN_TOKEN']);

const badName = ['a b', '-a', 'a-', 'a/b', 'a\nb', 'é', 'x'.repeat(254)];
const badFile = ['/nonexistent/file.pem', os.tmpdir()];
const badToken = [
  'short',
  'x'.repeat(15),
  'x'.repeat(4097),
  `${'x'.repeat(16)}\r\nX: y`,
  'é'.repeat(16),
];
/** Wrong for any whole-number variable, whatever its range. */
const notWhole = ['ten', '-1', '1.5', '1e3', '0x10', '+5', '1 2', '99999999999999999999999'];

/**
 * Wrong values for each variable, alone in an otherwise default environment. Some are wrong
 * only against another variable's default (LEASE_TTL_SECONDS 5, SHUTDOWN_TIMEOUT_MS 10000).
 */
const WRONG: Record<string, string[]> = {
  SERVICE_NAME: ['orders service', '-orders', 'orders/', 'ü', 's'.repeat(129), 'a,b'],
  POOL: ['Default', '-pool', 'pool-', 'a b', 'pool/x', 'p'.repeat(64), 'ü'],
  MEMBER_ID: badName,
  POD_NAME: badName,
  PORT: [...notWhole, '65536', '80\n81'],
  ADVERTISE_URL: ['not a url', 'ftp://host:1', 'http://', '10.0.0.7:8080', 'http://exa mple'],
  ETCD_ENDPOINTS: ['nope', ',,,', 'http://e0:2379,ftp://e1', 'e0:2379', 'unix:///run/etcd.sock'],
  ETCD_PREFIX: ['no-slash', '/ends/', '/', '/with space', '/ü'],
  ETCD_CALL_TIMEOUT_MS: [...notWhole, '99', '60001', '5000'],
  ETCD_MEMBERSHIP_CHECK_MS: [...notWhole, '999', '3600001'],
  ETCD_CA_FILE: badFile,
  ETCD_CERT_FILE: badFile,
  ETCD_KEY_FILE: badFile,
  ETCD_USERNAME: ['u'.repeat(257)],
  ETCD_PASSWORD: ['p'.repeat(1025)],
  FORWARD_TOKEN: badToken,
  ADMIN_TOKEN: badToken,
  LEASE_TTL_SECONDS: [...notWhole, '0', '1', '3601'],
  LEASE_SAFETY_MARGIN_MS: [...notWhole, '10001', '2500'],
  RECONCILE_INTERVAL_MS: [...notWhole, '199', '600001'],
  LEADERLESS_WAIT_MS: [...notWhole, '120001'],
  FORWARD_TIMEOUT_MS: [...notWhole, '49', '120001'],
  FORWARD_MAX_HOPS: [...notWhole, '0', '11'],
  MAX_PENDING_WORK: [...notWhole, '0', '1000001'],
  SHUTDOWN_TIMEOUT_MS: [...notWhole, '99', '600001'],
  SHUTDOWN_LINGER_MS: [...notWhole, '60001', '10000'],
  TICKET_BLOCK_SIZE: [...notWhole, '0', '1000000001'],
  LOG_LEVEL: ['verbose', 'INFO', 'warning', '30'],
  LOG_FORMAT: ['xml', 'JSON', 'text'],
  POD_IP: ['pod-7', '10.0.0', '::g', 'localhost'],
  POOLS: [',,', 'reports,Billing', 'a,a', 'a b'],
  ELECTION_STRATEGY: ['newest', 'Oldest', 'random'],
  WEIGHT: ['-1', 'heavy', '1e3', '1,5'],
  LABELS: ['zone', 'a=b=c', 'k=v w', '=v'],
  AVOID_LABELS: ['a=b=c', '=v', 'k=v,,x y'],
  AVOID_POOLS: [',', 'Billing', 'a,a'],
  STRATEGY_MODULE: badFile,
  PREEMPT_AFTER_MS: [...notWhole, '3600001'],
  CANDIDATE: ['no', 'False', '0', 'yes'],
  STATUS_PAGE: ['no', 'False', '0', 'off'],
  SIMPLE_WORK: ['no', 'TRUE', '1', 'off'],
};

/** How the message shows `value` of `name`. */
function shown(name: string, value: string): string {
  return SECRETS.has(name) ? `(hidden, ${value.length} characters)` : JSON.stringify(value);
}

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env, host);
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`);
}

describe('configuration errors, variable by variable', () => {
  it('every variable the schema parses has wrong values in this table, or is free text', () => {
    expect([...Object.keys(WRONG), ...FREE_FORM].sort()).to.deep.equal(
      [...PARSED_VARIABLES].sort(),
    );
  });

  for (const [name, values] of Object.entries(WRONG)) {
    it(`${name}: each wrong value is refused in exactly one line naming it`, () => {
      for (const value of values) {
        const error = configError({ [name]: value });
        const what = `${name}=${JSON.stringify(value).slice(0, 60)}`;
        expect(
          error.issues.map((issue) => issue.variable),
          what,
        ).to.deep.equal([name]);
        const lines = error.message.split(/\r?\n/);
        expect(lines, what).to.have.length(1);
        const prefix = `invalid ${name}=${shown(name, value)}: `;
        expect(lines[0]!.startsWith(prefix), `${lines[0]} starts with ${prefix}`).to.equal(true);
        expect(lines[0]!.slice(prefix.length), what).to.include('expected');
        if (SECRETS.has(name)) expect(error.message, what).not.to.include(value);
      }
    });
  }

  it('a blank value is unset, not wrong', () => {
    for (const name of Object.keys(WRONG)) {
      expect(() => loadConfig({ [name]: '  ' }, host), name).not.to.throw();
    }
  });
});

describe('configuration errors at the command line', () => {
  it('several bad variables at once: exit 2, one line each in schema order, secrets hidden, no stack trace', () => {
    assertCliBuilt();
    const bad = {
      POOL: 'Bad Pool',
      PORT: 'eighty',
      ETCD_CA_FILE: '/nonexistent/ca.pem',
      FORWARD_TOKEN: 'tiny-secret',
      LEASE_TTL_SECONDS: '1',
      TICKET_BLOCK_SIZE: '0',
      LOG_LEVEL: 'loud',
    };
    const result = spawnSync(process.execPath, [DEFAULT_CLI_PATH, 'serve'], {
      env: { PATH: process.env.PATH ?? '', ...bad },
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(result.status, result.stderr).to.equal(2);
    expect(result.stdout).to.equal('');
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines.map((line) => /^invalid ([A-Z_]+)=/.exec(line)?.[1])).to.deep.equal(
      Object.keys(bad),
    );
    for (const [i, [name, value]] of Object.entries(bad).entries()) {
      expect(lines[i]!.startsWith(`invalid ${name}=${shown(name, value)}: expected`)).to.equal(
        true,
      );
    }
    // What each line expects, as a user reads it.
    expect(lines[1]).to.match(/expected a port number from 0 to 65535/);
    expect(lines[4]).to.match(/expected a whole number of seconds from 2 to 3600/);
    expect(lines[6]).to.match(/expected one of fatal, error/);
    expect(result.stderr).not.to.include('tiny-secret');
    expect(result.stderr).not.to.match(/\n\s+at /);
  });
});
