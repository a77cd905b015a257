/**
 * etcd over TLS with client certificates, and with user/password authentication, against real
 * etcd processes; certificates are made with openssl for each run. A refusal that only an
 * operator can fix stops `serve` with one line naming the cause; an etcd that is not there
 * yet does not.
 */
import { readFile } from 'node:fs/promises';
import { expect } from 'chai';
import type { ExitStatus } from '../../src/demo/childProcesses.js';
import { EtcdCluster } from '../support/etcdCluster.js';
import { MemberProcess } from '../../src/demo/memberProcess.js';
import { freePort } from '../../src/demo/ports.js';
import { generateCertificates, type TestCertificates } from '../support/certificates.js';
import { eventually, expectUniqueTickets, TestPool } from '../support/pool.js';

const ROOT_PASSWORD = 'root-Secret-4711';
const MEMBER_USER = 'spl-member';
const MEMBER_PASSWORD = 'member-Secret-0815';
/** ETCD_PREFIX of the members that `startMember` starts. */
const MEMBER_PREFIX = `/spl-security-${process.pid}`;
/** Start-up refusals must be quick: one etcd round trip and one TLS handshake, not a TTL. */
const EXIT_WITHIN_MS = 5000;

describe('etcd over TLS and with authentication', function () {
  this.timeout(60_000);
  let certs: TestCertificates;
  /** TLS only: client certificates required (--client-cert-auth). */
  let tlsEtcd: EtcdCluster;
  /** TLS and user/password authentication. */
  let authEtcd: EtcdCluster;
  let pool: TestPool | undefined;
  const processes: MemberProcess[] = [];
  const clusters: EtcdCluster[] = [];

  before(async () => {
    certs = await generateCertificates();
    const tls = {
      certFile: certs.server.certFile,
      keyFile: certs.server.keyFile,
      caFile: certs.caFile,
    };
    [tlsEtcd, authEtcd] = await Promise.all([
      EtcdCluster.start({ size: 3, tls }),
      EtcdCluster.start({ size: 1, tls }),
    ]);
    await authEtcd.enableAuth(ROOT_PASSWORD);
  });

  after(async () => {
    await Promise.all([tlsEtcd?.close(), authEtcd?.close()]);
    await certs?.remove();
  });

  afterEach(async function () {
    const members = [...processes, ...(pool?.members.values() ?? [])];
    if (this.currentTest?.state === 'failed') {
      for (const member of members) {
        console.log(`--- member ${member.id} ---\n${member.recentOutput()}`);
      }
    }
    await Promise.all(members.map((member) => member.kill()));
    await Promise.all(clusters.map((cluster) => cluster.close()));
    processes.length = 0;
    clusters.length = 0;
    pool = undefined;
  });

  /** ETCD_CA_FILE, ETCD_CERT_FILE and ETCD_KEY_FILE for the given CA and client pair. */
  function tlsEnv(caFile = certs.caFile, client = certs.client): Record<string, string> {
    return { ETCD_CA_FILE: caFile, ETCD_CERT_FILE: client.certFile, ETCD_KEY_FILE: client.keyFile };
  }

  async function startMember(id: string, env: Record<string, string>): Promise<MemberProcess> {
    const member = MemberProcess.start({
      id,
      port: await freePort(),
      env: { LEASE_TTL_SECONDS: '2', ETCD_PREFIX: MEMBER_PREFIX, ...env },
    });
    processes.push(member);
    return member;
  }

  async function exitWithin(member: MemberProcess, timeoutMs: number): Promise<ExitStatus> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`member ${member.id} still runs after ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([member.exited, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The one line `serve` printed about why it stopped; fails on a stack trace. */
  function startupError(member: MemberProcess): string {
    const output = member.recentOutput();
    const lines = output.split('\n');
    const errors = lines.filter((line) => line.startsWith('service-pool-leader:'));
    expect(errors, output).to.have.length(1);
    expect(
      lines.filter((line) => /^\s+at /.test(line)),
      output,
    ).to.deep.equal([]);
    return errors[0]!;
  }

  /**
   * The keep-alive thread (its own etcd connection, with the member's TLS and credentials)
   * renews the member's lease: three renewals with no keep-alive failure and no fallback to
   * the main thread.
   */
  async function expectKeepAlivesOnTheirThread(member: MemberProcess): Promise<void> {
    await eventually(`member ${member.id} renewed its lease three times`, async () => {
      const metrics = await (await fetch(`${member.url}/metrics`)).text();
      const renewals = /^service_pool_lease_renewal_time_left_seconds_count\{[^}]*\} (\d+)/m.exec(
        metrics,
      );
      return Number(renewals?.[1] ?? 0) >= 3;
    });
    expect(member.recentOutput()).to.include('lease keep-alives run on their own thread');
    expect(member.recentOutput()).not.to.include('lease keep-alive thread failed');
    expect(member.recentOutput()).not.to.include('lease keep-alive failed');
  }

  /** The base64 lines of a PEM file: what would show if key material leaked into a log. */
  async function pemBody(file: string): Promise<string[]> {
    const pem = await readFile(file, 'utf8');
    return pem.split('\n').filter((line) => line.length >= 16 && !line.startsWith('-----'));
  }

  it('two members over TLS with client certificates agree on the oldest and serve /work from either', async () => {
    pool = new TestPool(tlsEtcd, { LEASE_TTL_SECONDS: '2', ...tlsEnv() });
    expect(tlsEtcd.endpoints.every((url) => url.startsWith('https://'))).to.equal(true);
    await pool.start(['a', 'b']);
    expect(await pool.agreedLeader()).to.equal('a');

    const answers = await Promise.all([pool.work('a', 'via a'), pool.work('b', 'via b')]);
    expect(answers.map((answer) => answer.status)).to.deep.equal([200, 200]);
    expect(answers.map((answer) => answer.body.performedBy)).to.deep.equal(['a', 'a']);
    expect(answers[1].body.via).to.deep.equal(['b', 'a']);
    expectUniqueTickets(answers);
    for (const member of pool.running()) await expectKeepAlivesOnTheirThread(member);
  });

  it('with authentication on, members logged in as a user with readwrite on their prefix work; no password or key material reaches the logs', async () => {
    pool = new TestPool(authEtcd, {
      LEASE_TTL_SECONDS: '2',
      ...tlsEnv(),
      ETCD_USERNAME: MEMBER_USER,
      ETCD_PASSWORD: MEMBER_PASSWORD,
    });
    await authEtcd.addUser(MEMBER_USER, MEMBER_PASSWORD, `${pool.prefix}/`);
    await pool.start(['a', 'b']);
    expect(await pool.agreedLeader()).to.equal('a');
    const answer = await pool.work('b', 'authenticated');
    expect(answer.status).to.equal(200);
    expect(answer.body.performedBy).to.equal('a');
    for (const member of pool.running()) await expectKeepAlivesOnTheirThread(member);

    // etcd's own view agrees: the member keys exist under the prefix the user may write.
    const keys = await authEtcd.etcdctl(['get', '--prefix', '--keys-only', `${pool.prefix}/`]);
    expect(keys.stdout).to.include(`${pool.prefix}/pools/default/leader`);

    const secrets = [
      MEMBER_PASSWORD,
      'PRIVATE KEY',
      ...(await pemBody(certs.client.keyFile)),
      ...(await pemBody(certs.server.keyFile)),
    ];
    for (const member of pool.running()) {
      const metrics = await (await fetch(`${member.url}/metrics`)).text();
      const seen = `${member.recentOutput()}\n${metrics}`;
      expect(seen).to.include('registered in the pool');
      for (const secret of secrets) expect(seen).not.to.include(secret);
    }
  });

  it('a wrong password: serve exits 1 within a few seconds with one line naming authentication, no stack trace', async () => {
    const startedAt = Date.now();
    const member = await startMember('a', {
      ETCD_ENDPOINTS: authEtcd.endpoints.join(','),
      ...tlsEnv(),
      ETCD_USERNAME: 'root',
      ETCD_PASSWORD: 'not-the-root-password',
    });
    const exit = await exitWithin(member, EXIT_WITHIN_MS);
    console.log(`      measured: wrong password to exit ${Date.now() - startedAt} ms`);
    expect(exit.code).to.equal(1);
    const line = startupError(member);
    expect(line).to.match(/etcd rejected the credentials \(authentication failed\)/);
    expect(line).to.include('ETCD_PASSWORD');
    expect(member.recentOutput()).not.to.include('not-the-root-password');
  });

  it('a user who may only read the prefix: serve exits 1 naming the missing permission', async () => {
    // Read access alone would pass a plain read; the start-up check also proves write access.
    for (const args of [
      [
        'user',
        'add',
        'spl-reader',
        `--new-user-password=${MEMBER_PASSWORD}`,
        '--interactive=false',
      ],
      ['role', 'add', 'spl-reader'],
      ['role', 'grant-permission', 'spl-reader', 'read', `${MEMBER_PREFIX}/`, '--prefix=true'],
      ['user', 'grant-role', 'spl-reader', 'spl-reader'],
    ]) {
      const result = await authEtcd.etcdctl(args);
      expect(result.code, result.stderr).to.equal(0);
    }
    const member = await startMember('a', {
      ETCD_ENDPOINTS: authEtcd.endpoints.join(','),
      ...tlsEnv(),
      ETCD_USERNAME: 'spl-reader',
      ETCD_PASSWORD: MEMBER_PASSWORD,
    });
    const exit = await exitWithin(member, EXIT_WITHIN_MS);
    expect(exit.code).to.equal(1);
    const line = startupError(member);
    expect(line).to.match(/etcd denied access to the key prefix \(permission denied\)/);
    expect(line).to.include('readwrite on ETCD_PREFIX');
  });

  it('a client certificate signed by a CA etcd does not trust: serve exits 1 naming TLS and the client certificate', async () => {
    const member = await startMember('a', {
      ETCD_ENDPOINTS: tlsEtcd.endpoints.join(','),
      ...tlsEnv(certs.caFile, certs.untrustedClient),
    });
    const exit = await exitWithin(member, EXIT_WITHIN_MS);
    expect(exit.code).to.equal(1);
    const line = startupError(member);
    expect(line).to.match(/TLS handshake with etcd at https:\/\/127\.0\.0\.1:\d+ failed/);
    expect(line).to.match(/did not accept the client certificate/);
    expect(line).to.include('ETCD_CERT_FILE');
  });

  it("a CA that did not sign etcd's certificate: serve exits 1 naming TLS and the untrusted server certificate", async () => {
    const member = await startMember('a', {
      ETCD_ENDPOINTS: tlsEtcd.endpoints.join(','),
      ...tlsEnv(certs.untrustedCaFile, certs.client),
    });
    const exit = await exitWithin(member, EXIT_WITHIN_MS);
    expect(exit.code).to.equal(1);
    const line = startupError(member);
    expect(line).to.match(/TLS handshake with etcd at https:\/\/127\.0\.0\.1:\d+ failed/);
    expect(line).to.match(/certificate not trusted/);
    expect(line).to.include('ETCD_CA_FILE');
  });

  it('etcd unreachable at start-up: the member stays up, live and not ready, says why, and leads once etcd comes', async () => {
    const port = await freePort();
    const endpoint = `https://127.0.0.1:${port}`;
    const member = await startMember('a', { ETCD_ENDPOINTS: endpoint, ...tlsEnv() });

    await eventually('the member says etcd is unreachable and that it retries', () =>
      member
        .recentOutput()
        .includes(
          `etcd unreachable at ${endpoint} (connection refused) — not ready; retrying in the background`,
        ),
    );
    expect((await fetch(`${member.url}/healthz`)).status).to.equal(200);
    expect((await fetch(`${member.url}/readyz`)).status).to.equal(503);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(member.running, member.recentOutput()).to.equal(true);

    const etcd = await EtcdCluster.start({
      size: 1,
      clientPorts: [port],
      tls: { certFile: certs.server.certFile, keyFile: certs.server.keyFile, caFile: certs.caFile },
    });
    clusters.push(etcd);
    const etcdUpAt = Date.now();
    await member.waitReady(20_000);
    await eventually('the member leads', async () => {
      const view = (await (await fetch(`${member.url}/pool`)).json()) as {
        self: { isLeader: boolean };
      };
      return view.self.isLeader;
    });
    console.log(`      measured: etcd up to member ready and leading ${Date.now() - etcdUpAt} ms`);
    await eventually('the member logs that etcd answers', () =>
      member.recentOutput().includes('"msg":"etcd answers"'),
    );
    const work = await fetch(`${member.url}/work?payload=late`);
    expect(work.status).to.equal(200);
  });
});
