/**
 * The container kubelet itself, where the rehearsal relies on it behaving as the kubelet does:
 * it refuses what the kubelet refuses, restarts a container whose liveness probe fails with the
 * kubelet's back-off, and an engine that cannot start containers fails loudly with its reason
 * (the rehearsal is never skipped).
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import { Cluster } from './support/cluster.js';
import { ensureStandinNode } from './support/images.js';
import { assertContainersWork } from './support/podman.js';

/** The image a spec names here; the stand-in node base runs it. */
const IMAGE = 'node:24-slim';

describe('the container kubelet', function () {
  this.timeout(90_000);
  let cluster: Cluster;
  let nodeImage: string;
  const lines: string[] = [];

  before(async function () {
    // The stand-in base takes about 70 s to build the first time on a new machine.
    this.timeout(900_000);
    nodeImage = await ensureStandinNode((line) => console.log(`      ${line}`));
    cluster = await Cluster.create({
      namespace: 'kubelet-test',
      objects: [],
      images: { [IMAGE]: nodeImage },
      log: (line) => lines.push(`${new Date().toISOString().slice(17, 23)} ${line}`),
    });
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(lines.join('\n'));
  });

  after(async () => {
    await cluster?.close();
  });

  it('refuses runAsNonRoot when neither the spec nor the image names a non-root user, as the kubelet does', async () => {
    const spec: IPodSpec = {
      containers: [
        {
          name: 'main',
          image: IMAGE,
          command: ['sleep', '60'],
          securityContext: { runAsNonRoot: true },
        },
      ],
    };
    const pod = cluster.runPod({ name: 'root-image', labels: {}, spec, aliases: [] });
    let refused: Error | undefined;
    await pod.waitReady(30_000).catch((error: Error) => (refused = error));
    expect(refused?.message).to.match(/runAsNonRoot and image will run as root/);
    expect(pod.restarts).to.equal(0);
    expect(pod.lastExit, 'no container was started').to.equal(undefined);
  });

  it('restarts a container whose liveness probe fails failureThreshold times, then backs off 10 s', async () => {
    const spec: IPodSpec = {
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'main',
          image: IMAGE,
          command: ['node', '-e', 'setInterval(() => {}, 1000)'],
          securityContext: { runAsUser: 1000, runAsGroup: 1000, runAsNonRoot: true },
          // Nothing listens on port 7: every probe fails.
          livenessProbe: { tcpSocket: { port: 7 }, periodSeconds: 1, failureThreshold: 2 },
        },
      ],
    };
    const pod = cluster.runPod({ name: 'unlive', labels: {}, spec, aliases: [] });
    const starts = () => pod.events.filter((e) => e.what.startsWith('starting container'));
    await cluster.until('a third container', () => starts().length >= 3, 60_000);
    const events = pod.events.map((e) => e.what);
    expect(
      events.filter((e) => e === 'liveness probe failed 2 times: restarting the container'),
    ).to.have.length.at.least(2);
    // The first restart at once, the second after the kubelet's initial back-off.
    expect(events).to.include('back-off 10 s restarting failed container');
    const exits = pod.events.filter((e) => e.what.startsWith('container exited'));
    const [, second, third] = starts();
    expect(second!.at - exits[0]!.at, 'the first restart').to.be.below(2000);
    expect(third!.at - exits[1]!.at, 'the second, after the back-off').to.be.at.least(10_000);
    expect(pod.restarts).to.equal(2);
    await pod.delete();
  });

  it('an engine that cannot set up a network fails the run with its reason (netavark without iptables)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'spl-no-network-'));
    const conf = path.join(dir, 'containers.conf');
    // A stand-in netavark that fails as the real one does when iptables is missing.
    mkdirSync(path.join(dir, 'bin'));
    writeFileSync(
      path.join(dir, 'bin', 'netavark'),
      '#!/bin/sh\necho "iptables: No such file or directory (stand-in)" >&2\nexit 1\n',
    );
    chmodSync(path.join(dir, 'bin', 'netavark'), 0o755);
    writeFileSync(
      conf,
      '[network]\nnetwork_backend = "netavark"\n\n' +
        `[engine]\nruntime = "runc"\nhelper_binaries_dir = ["${path.join(dir, 'bin')}"]\n`,
    );
    try {
      let failure: Error | undefined;
      await assertContainersWork(nodeImage, conf).catch((error: Error) => (failure = error));
      expect(failure?.message).to.match(/^containers cannot use a network here/);
      expect(failure?.message).to.include('iptables: No such file or directory (stand-in)');
      expect(failure?.message).to.include('scripts/install-system-deps.sh containers');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an engine that cannot start containers fails the run with its reason', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'spl-broken-engine-'));
    const conf = path.join(dir, 'containers.conf');
    writeFileSync(conf, '[engine]\nruntime = "no-such-oci-runtime"\n');
    try {
      let failure: Error | undefined;
      await assertContainersWork(nodeImage, conf).catch((error: Error) => (failure = error));
      expect(failure?.message).to.match(/^containers cannot run here/);
      expect(failure?.message).to.include('no-such-oci-runtime');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
