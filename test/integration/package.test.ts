/**
 * What `npm pack` makes is a working package: installed from its tarball into a scratch
 * project (with express, as docs/library.md's example needs), the example of examples/ runs
 * from it against a real etcd and serves /work, and the package's CLI answers. Dependencies
 * come from npm's cache when `npm ci` already fetched them.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { EtcdCluster } from '../support/etcdCluster.js';
import { MemberProcess } from '../../src/demo/memberProcess.js';
import { freePort } from '../../src/demo/ports.js';
import { eventually } from '../support/pool.js';

const run = promisify(execFile);
const ROOT = path.join(import.meta.dirname, '../..');

describe('the package npm pack makes', function () {
  this.timeout(180_000);
  let scratch: string;
  let etcd: EtcdCluster | undefined;
  let copy: MemberProcess | undefined;

  before(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), 'spl-package-'));
  });

  after(async () => {
    await copy?.kill();
    await etcd?.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it('installs from its tarball and runs the orders example and the CLI from it', async () => {
    const { stdout } = await run('npm', ['pack', '--pack-destination', scratch, '--json'], {
      cwd: ROOT,
    });
    const [packed] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
    const { filename, files } = packed!;
    const shipped = files.map((file) => file.path);
    expect(shipped).to.include.members([
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'dist/src/cli.js',
      'dist/src/membership/leaseThreadWorker.js',
      'dist/src/log/prettyLines.js',
      // `service-pool-leader demo` ships, with the etcd launcher it starts.
      'dist/src/demo/demo.js',
      'dist/src/demo/localEtcd.js',
      'LICENSE',
      'package.json',
    ]);
    expect(
      shipped.filter((file) => file.startsWith('test/') || file.startsWith('src/')),
    ).to.deep.equal([]);
    // The tests' harnesses (TCP proxy, etcd backup, the test cluster) stay out of the package.
    expect(
      shipped.filter((file) => /\/(tcpProxy|etcdBackup|etcdTls|etcdCluster)\./.test(file)),
    ).to.deep.equal([]);

    await writeFile(
      path.join(scratch, 'package.json'),
      JSON.stringify({ name: 'scratch', private: true, type: 'module' }),
    );
    await run(
      'npm',
      [
        'install',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        path.join(scratch, filename),
        'express@5',
      ],
      { cwd: scratch, timeout: 150_000 },
    );
    const version = await run(path.join(scratch, 'node_modules/.bin/service-pool-leader'), [
      '--version',
    ]);
    expect(version.stdout.trim()).to.match(/^\d+\.\d+\.\d+/);

    await copyFile(
      path.join(ROOT, 'examples/orders-service.mjs'),
      path.join(scratch, 'orders-service.mjs'),
    );
    etcd = await EtcdCluster.start({ size: 1 });
    copy = MemberProcess.start({
      id: 'a',
      port: await freePort(),
      cliPath: path.join(scratch, 'orders-service.mjs'),
      args: [],
      // Pretty logs, as the demo and a terminal use them: their transport ships too.
      env: {
        ETCD_ENDPOINTS: etcd.endpoints.join(','),
        LEASE_TTL_SECONDS: '2',
        LOG_FORMAT: 'pretty',
      },
    });
    await copy.waitReady();
    const res = await fetch(`${copy.url}/work`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ payload: { item: 'tea' } }),
    });
    expect(res.status).to.equal(200);
    expect(await res.json()).to.include({ item: 'tea', takenBy: 'a', recorded: true });
    // The keep-alive thread's entry ships too: it takes the lease over at its first renewal.
    await eventually('the keep-alive thread takes over', () =>
      copy!.recentOutput().includes('lease keep-alives run on their own thread'),
    );
    expect(copy.recentOutput()).to.match(
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}lease keep-alives run on their own thread /m,
    );
  });
});
