/**
 * One error hierarchy: every error class is a PoolError whose code is in one union; every
 * HTTP-facing code is documented with its status, a row of docs/operations.md's table and a
 * mention in the README's API section; the retry marker says what that table says.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { ServiceCallError, isServiceCallError } from '../../src/client/service.js';
import { UsageError } from '../../src/client/invocation.js';
import { ConfigError, isConfigError } from '../../src/config/config.js';
import { LocalProcessError } from '../../src/demo/childProcesses.js';
import { DemoCommandError } from '../../src/demo/demoMembers.js';
import { LeadershipEndedError, isLeadershipEnded } from '../../src/election/leadershipEnd.js';
import { ServiceConflictError, isServiceConflict } from '../../src/election/poolIdentity.js';
import { StrategyFallback } from '../../src/election/strategy.js';
import {
  HTTP_ERROR_CODES,
  LeaderUnreachableError,
  NoLeaderError,
  NotLeaderError,
  PROCESS_ERROR_CODES,
  PoolError,
  isHttpError,
  isNotLeader,
  isPoolError,
  isRetryable,
  type ErrorCode,
} from '../../src/errors.js';
import { EtcdAccessError, isEtcdAccessError } from '../../src/etcd/access.js';
import { STATUS_BY_CODE, errorAnswer } from '../../src/http/errors.js';
import { AnswerFormatError } from '../../src/work/httpAnswer.js';
import { UpstreamUnreachableError } from '../../src/work/forwarder.js';
import { LinkFormatError } from '../../src/work/linkFrames.js';
import { LinkRefusedError } from '../../src/work/memberLink.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

/** The rows of docs/operations.md's error table: status and code. */
function documentedErrors(): { status: number; code: string; when: string }[] {
  const rows = read('docs/operations.md').matchAll(/^\| (\d{3})\s+\| `([A-Z_]+)`\s+\| (.+) \|$/gm);
  return [...rows].map(([, status, code, when]) => ({
    status: Number(status),
    code: code!,
    when: when!,
  }));
}

/** `class X extends Y` in every file under src/: the classes and their bases. */
function declaredClasses(): Map<string, string> {
  const classes = new Map<string, string>();
  const files = readdirSync(path.join(ROOT, 'src'), { recursive: true, encoding: 'utf8' });
  for (const file of files.filter((name) => name.endsWith('.ts'))) {
    const text = read(path.join('src', file));
    for (const [, name, base] of text.matchAll(/\bclass (\w+) extends (\w+)/g)) {
      classes.set(name!, base!);
    }
  }
  return classes;
}

/** The classes that descend from Error, by name, with the base each extends. */
function errorClasses(): Map<string, string> {
  const declared = declaredClasses();
  const family = new Map<string, string>();
  for (let grew = true; grew; ) {
    grew = false;
    for (const [name, base] of declared) {
      if (!family.has(name) && (base === 'Error' || family.has(base))) {
        family.set(name, base);
        grew = true;
      }
    }
  }
  return family;
}

const ALL_CODES: readonly ErrorCode[] = [...HTTP_ERROR_CODES, ...PROCESS_ERROR_CODES];
const target = { id: 'b', url: 'http://127.0.0.1:1', term: 7n };
const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });

/**
 * One instance of every error class under src/, with the guard made for it (if any). A class
 * added to src/ that is missing here fails "every error class under src/ is listed".
 */
const EXAMPLES: { error: PoolError; guard?: (error: unknown) => boolean }[] = [
  { error: new PoolError('BAD_REQUEST', 'bad') },
  { error: new NotLeaderError(), guard: isNotLeader },
  { error: new NoLeaderError(1500) },
  { error: new LeaderUnreachableError(1500, { ...target, reason: 'ECONNREFUSED' }) },
  { error: new UpstreamUnreachableError(target, refused) },
  {
    error: new ConfigError([{ variable: 'POOL', value: '', expected: 'a pool name' }]),
    guard: isConfigError,
  },
  {
    error: new EtcdAccessError({ kind: 'tls', permanent: true, message: 'TLS failed' }),
    guard: isEtcdAccessError,
  },
  {
    error: new ServiceConflictError({
      pool: 'default',
      prefix: '/pool',
      service: 'a',
      poolService: 'b',
      member: 'm1',
      createRevision: 5n,
    }),
    guard: isServiceConflict,
  },
  { error: new LeadershipEndedError(3n, 'resigned'), guard: isLeadershipEnded },
  { error: new StrategyFallback('slow', 'too slow') },
  { error: new UsageError('--url "x" is not a URL') },
  { error: new ServiceCallError('UNREACHABLE', 'cannot reach'), guard: isServiceCallError },
  { error: new LocalProcessError('EXITED', 'exited') },
  { error: new DemoCommandError('no member "z"') },
  { error: new AnswerFormatError('not an HTTP/1.x status line: "SMTP ready"') },
  { error: new LinkFormatError('not a frame header: "SMTP ready"') },
  { error: new LinkRefusedError('127.0.0.1:1', 'HTTP/1.1 404 Not Found') },
];

describe('one error hierarchy', () => {
  it('every error class under src/ is listed here, and only PoolError extends Error itself', () => {
    const family = errorClasses();
    expect([...family].filter(([, base]) => base === 'Error')).to.deep.equal([
      ['PoolError', 'Error'],
    ]);
    expect([...family.keys()].sort()).to.deep.equal(
      EXAMPLES.map(({ error }) => error.constructor.name).sort(),
    );
  });

  for (const { error } of EXAMPLES) {
    const name = error.constructor.name;

    it(`${name} is a PoolError named ${name} whose code ${error.code} is in the union`, () => {
      expect(error).to.be.instanceOf(Error).and.instanceOf(PoolError);
      expect(isPoolError(error)).to.equal(true);
      expect(isPoolError(error, error.code)).to.equal(true);
      expect(ALL_CODES).to.include(error.code);
      expect(error.name).to.equal(name);
    });
  }

  it('the codes are split: HTTP-facing codes have a status, process-level codes none', () => {
    expect(Object.keys(STATUS_BY_CODE).sort()).to.deep.equal([...HTTP_ERROR_CODES].sort());
    // No code is both, and none is listed twice.
    expect(new Set(ALL_CODES).size).to.equal(ALL_CODES.length);
    for (const code of ALL_CODES) {
      expect(isHttpError(new PoolError(code, 'x')), code).to.equal(code in STATUS_BY_CODE);
    }
  });

  it('each guard holds for its own class and for no other, and instanceof tells them apart', () => {
    for (const { error, guard } of EXAMPLES) {
      if (guard === undefined) continue;
      for (const other of EXAMPLES) {
        const mine = other.error.constructor === error.constructor;
        const sameCode = other.error.code === error.code;
        expect(guard(other.error), `${guard.name}(${other.error.constructor.name})`).to.equal(
          mine || (guard === isNotLeader && sameCode),
        );
        expect(other.error instanceof error.constructor, other.error.constructor.name).to.equal(
          mine,
        );
      }
    }
    expect(isPoolError(new Error('plain'))).to.equal(false);
    expect(isPoolError(new NoLeaderError(1), 'NOT_LEADER')).to.equal(false);
  });

  it('a leader that could not be reached says so: never sent, retryable, not UPSTREAM_FAILED', () => {
    const unreachable = new UpstreamUnreachableError(target, refused);
    expect(unreachable.code).to.equal('LEADER_UNREACHABLE');
    expect(isRetryable(unreachable)).to.equal(true);
    expect(unreachable.reason).to.equal('ECONNREFUSED');
    expect(unreachable.message).to.equal(
      'leader b at http://127.0.0.1:1 could not be reached (ECONNREFUSED)',
    );
    expect(unreachable.cause).to.equal(refused);
  });
});

describe('error codes', () => {
  for (const [code, status] of Object.entries(STATUS_BY_CODE)) {
    it(`${status} ${code} is in docs/operations.md's table and in the README`, () => {
      expect(read('docs/operations.md')).to.match(
        new RegExp(`^\\| ${status}\\s+\\| \`${code}\`\\s+\\| \\S`, 'm'),
      );
      expect(read('README.md')).to.include(`\`${code}\``);
    });
  }

  it("docs/operations.md's table lists the HTTP-facing codes and no other", () => {
    const documented = documentedErrors();
    expect(documented.map((row) => row.code).sort()).to.deep.equal([...HTTP_ERROR_CODES].sort());
    for (const { code, status } of documented) {
      expect(STATUS_BY_CODE[code as keyof typeof STATUS_BY_CODE], code).to.equal(status);
    }
  });

  it('what may be retried is what the table says: every 503 and the 421, nothing that may have executed', () => {
    for (const { code, status, when } of documentedErrors()) {
      const retryable = isRetryable(new PoolError(code as ErrorCode, 'x'));
      expect(retryable, `${status} ${code}`).to.equal(status === 503 || status === 421);
      if (when.includes('may have executed')) expect(retryable, code).to.equal(false);
    }
    for (const code of PROCESS_ERROR_CODES) {
      expect(isRetryable(new PoolError(code, 'x')), code).to.equal(false);
    }
    expect(isRetryable(new Error('ECONNRESET'))).to.equal(false);
  });

  it('a process-level PoolError never goes on the wire: it is answered 500 INTERNAL', () => {
    expect(errorAnswer(new LeadershipEndedError(3n, 'resigned'))).to.deep.include({
      status: 500,
      body: { error: { code: 'INTERNAL', message: 'internal error' } },
    });
    const sent = errorAnswer(new NoLeaderError(1500));
    expect(sent).to.deep.equal({
      status: 503,
      headers: { 'Retry-After': '1' },
      body: {
        error: {
          code: 'NO_LEADER',
          message: 'no leader was elected within 1500 ms',
          details: { waitedMs: 1500 },
        },
      },
    });
  });
});
