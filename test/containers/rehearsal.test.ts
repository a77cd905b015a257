/**
 * The README's Kubernetes section, rehearsed in a real container runtime: the image built from
 * the repository's Dockerfile, the chart rendered by `helm template` exactly as a user installs
 * it (`--set image.tag=dev --set image.pullPolicy=Never`, namespace `pools`, release `spl`),
 * every pod run as a podman container by the container kubelet (support/containerPod.ts) with
 * its own IP and the cluster's DNS names, the chart's own etcd StatefulSet bootstrapping from
 * those names, a Service stand-in in front of the members, and clients in containers of their
 * own. Then the user's story: install, `helm test`, `curl /work`, `kubectl delete pod` the
 * leader, a node crash under the leader, an etcd pod deleted, a rolling update to a new tag,
 * the leader cut off the network; every answer of the whole run is checked with the chaos
 * suite's invariants; Debian's Prometheus scrapes the pods as the ServiceMonitor says and every
 * dashboard query returns data.
 *
 * Stand-ins, each said where it matters: no image can be pulled here, so `node:24-slim` is a
 * Debian bookworm minbase with Node's own binary (support/images.ts) and
 * `quay.io/coreos/etcd:v3.5.25` is Debian's etcd 3.4.23 with the chart's exact command, args
 * and env. etcd 3.4 serves /health but not /readyz and /livez (added in 3.5.11) on its metrics
 * listener: the etcd pods' probes ask /health on the same port, the one difference. What this
 * cannot show: kube-proxy's iptables rules (a container proxy stands in), the API server and
 * its admission, a real kubelet's timing, NetworkPolicy enforcement.
 *
 * `make rehearse` runs this file alone; `make test` runs it with everything else.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { appendFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import type { IPod } from 'kubernetes-models/v1/Pod';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import {
  checkInvariants,
  claims,
  claimedTerms,
  outcomes,
  type CallRecord,
} from '../chaos/harness.js';
import { dashboardQueries, fillVariables, loadDashboard } from '../observability/dashboard.js';
import { PrometheusServer, isFiniteSample } from '../observability/prometheusServer.js';
import {
  REPO_ROOT,
  TOOLSETS,
  ensureTools,
  find,
  renderChart,
  type Manifest,
} from '../chart/support/tools.js';
import { ClientLoop, type ClientOptions } from './support/clientLoop.js';
import { Cluster } from './support/cluster.js';
import type { ContainerPod } from './support/containerPod.js';
import { buildAppImage, ensureStandinEtcd, ensureStandinNode, tagImage } from './support/images.js';
import { assertContainersWork } from './support/podman.js';
import { ServiceProxy } from './support/serviceProxy.js';
import { DeploymentController, StatefulSetController } from './support/workloads.js';

const NAMESPACE = 'pools';
const RELEASE = 'spl';
/** What the README's "By hand" installs, plus a ServiceMonitor scraped every 2 s. */
const VALUES = {
  image: { tag: 'dev', pullPolicy: 'Never' },
  metrics: { serviceMonitor: { enabled: true, interval: '2s', scrapeTimeout: '2s' } },
};
const NEXT_TAG = 'dev-next';
const APP_IMAGE = 'localhost/service-pool-leader:rehearsal';
const APP_IMAGE_NEXT = 'localhost/service-pool-leader:rehearsal-next';
/** Beyond the lease TTL, what a crash failover may take on this 2-core machine. */
const CRASH_SLACK_MS = 2500;
const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts', 'rehearsal');

interface PoolAnswer {
  self: { id: string; isLeader: boolean };
  leader: { id: string; term: number } | null;
  members: { id: string; createRevision: number }[];
}

let began = Date.now();
const elapsed = () => `${((Date.now() - began) / 1000).toFixed(1)} s`;
function progress(line: string): void {
  console.log(`      [${elapsed()}] ${line}`);
}
function measured(line: string): void {
  console.log(`      measured: ${line}`);
  writeFileSync(path.join(ARTIFACTS, 'measured.txt'), `${line}\n`, { flag: 'a' });
}

/** etcd 3.4 (the stand-in) has /health where 3.5.11+ has /readyz and /livez. */
function etcd34Probe(image: string, probe: IProbe): IProbe {
  const path = probe.httpGet?.path;
  if (!image.startsWith('quay.io/coreos/etcd:') || (path !== '/readyz' && path !== '/livez')) {
    return probe;
  }
  return { ...probe, httpGet: { ...probe.httpGet!, path: '/health' } };
}

describe('the Kubernetes section rehearsed: the image and the chart’s pods in real containers', function () {
  this.timeout(600_000);
  let manifests: Manifest[];
  let nextDeployment: IDeployment;
  let cluster: Cluster;
  let members: DeploymentController;
  let etcd: StatefulSetController;
  let service: ServiceProxy;
  let prometheus: PrometheusServer | undefined;
  let nodeImage: string;
  let serviceUrl: string;
  let port: number;
  let scrapeStart = 0;
  const records: CallRecord[] = [];
  /** Calls whose connection may die with a crashed pod (the Service still listed it). */
  const disrupted = new Set<string>();
  let clients = 0;

  /** LEASE_TTL_SECONDS as the chart's ConfigMap sets it, in ms. */
  const ttlMs = () =>
    Number(
      find<Manifest & { data: Record<string, string> }>(manifests, 'ConfigMap', members.name).data
        .LEASE_TTL_SECONDS,
    ) * 1000;

  /** GET a path of one pod, from the node (this machine), as a probe or kubectl would. */
  async function podGet<T>(pod: ContainerPod, route: string): Promise<T> {
    const response = await fetch(`http://${pod.ip}:${port}${route}`, {
      signal: AbortSignal.timeout(3000),
    });
    return (await response.json()) as T;
  }

  async function leaderPod(): Promise<ContainerPod> {
    let found: ContainerPod | undefined;
    await cluster.until(
      'every member agrees on one leader',
      async () => {
        const pods = members.pods().filter((pod) => pod.serving);
        const answers = await Promise.all(
          pods.map((pod) => podGet<PoolAnswer>(pod, '/pool').catch(() => undefined)),
        );
        const ids = new Set(answers.map((answer) => answer?.leader?.id));
        const id = [...ids][0];
        found = pods.find((pod) => pod.name === id);
        return ids.size === 1 && found !== undefined;
      },
      30_000,
    );
    return found!;
  }

  /** A client loop through the Service, from a container of its own. */
  function throughService(name: string, options: Partial<ClientOptions> = {}) {
    clients++;
    return ClientLoop.inContainer(cluster, nodeImage, `${clients}-${name}`, {
      url: `${serviceUrl}/work?payload=${name}`,
      asked: `service ${name}`,
      intervalMs: 20,
      maxMs: 120_000,
      ...options,
    });
  }

  async function finish(loop: ClientLoop): Promise<CallRecord[]> {
    const done = await loop.stop();
    records.push(...done);
    return done;
  }

  const failed = (calls: CallRecord[]) => calls.filter((r) => r.status !== 200);

  before(async function () {
    began = Date.now();
    mkdirSync(ARTIFACTS, { recursive: true });
    writeFileSync(path.join(ARTIFACTS, 'measured.txt'), '');
    ensureTools();
    progress('images: the stand-in node and etcd bases (cached by content), then the Dockerfile');
    nodeImage = await ensureStandinNode(progress);
    const etcdImage = await ensureStandinEtcd(progress);
    await assertContainersWork(nodeImage);
    const build = await buildAppImage(APP_IMAGE, nodeImage, progress);
    await tagImage(APP_IMAGE, APP_IMAGE_NEXT);
    measured(
      `image build ${build.seconds.toFixed(1)} s; the image's own layers ${(build.ownLayersBytes / 1e6).toFixed(1)} MB (without the base)`,
    );

    const helm = TOOLSETS.at(-1)!;
    manifests = await renderChart(helm, VALUES, RELEASE);
    nextDeployment = find<IDeployment>(
      await renderChart(helm, { ...VALUES, image: { ...VALUES.image, tag: NEXT_TAG } }, RELEASE),
      'Deployment',
    );
    const etcdSet = find<IStatefulSet>(manifests, 'StatefulSet');
    cluster = await Cluster.create({
      namespace: NAMESPACE,
      objects: manifests,
      images: {
        'service-pool-leader:dev': APP_IMAGE,
        [`service-pool-leader:${NEXT_TAG}`]: APP_IMAGE_NEXT,
        [etcdSet.spec!.template.spec!.containers[0]!.image!]: etcdImage,
      },
      adjustProbe: etcd34Probe,
      log: (line) =>
        void appendFile(path.join(ARTIFACTS, 'cluster.log'), `[${elapsed()}] ${line}\n`),
    });
    await writeFile(path.join(ARTIFACTS, 'cluster.log'), '');
    const deployment = find<IDeployment>(manifests, 'Deployment');
    port = deployment.spec!.template.spec!.containers[0]!.ports!.find(
      (p) => p.name === 'http',
    )!.containerPort;
    members = new DeploymentController(cluster, deployment);
    etcd = new StatefulSetController(cluster, etcdSet);
  });

  after(async function () {
    progress('cleaning up: Prometheus, every container and the network of this run');
    await prometheus?.close();
    if (cluster) {
      // Every pod's output, for a failed run's reader.
      for (const pod of cluster.pods) {
        await writeFile(path.join(ARTIFACTS, `${pod.name}.tail.log`), pod.recentOutput());
      }
      await cluster.close();
    }
    progress('cleaned up');
  });

  it('helm install: 3 etcd pods bootstrap one cluster from the chart’s DNS names and 3 members become ready', async () => {
    const started = Date.now();
    const appService = manifests.find(
      (m) => m.kind === 'Service' && (m as IService).spec?.clusterIP !== 'None',
    ) as IService;
    serviceUrl = `http://${appService.metadata!.name}:${appService.spec!.ports![0]!.port}`;
    // Everything at once, as `helm install` creates it.
    const installing = etcd.start();
    members.start();
    service = await ServiceProxy.start(cluster, appService, nodeImage);
    await installing;
    await cluster.until(
      '3 etcd pods and 3 members ready',
      () => [...cluster.pods].filter((pod) => pod.serving).length === 6,
      180_000,
    );
    const readyTimes = [...cluster.pods]
      .map((pod) => `${pod.name} ${((pod.firstReadyAt! - started) / 1000).toFixed(1)} s`)
      .join(', ');
    measured(
      `install to all pods ready ${((Date.now() - started) / 1000).toFixed(1)} s (${readyTimes})`,
    );

    // One etcd cluster of three, under the chart's names.
    const list = await cluster.pod(etcd.podName(0)).exec(['etcdctl', 'member', 'list']);
    expect(list.code, list.stderr).to.equal(0);
    const names = list.stdout
      .trim()
      .split('\n')
      .map((line) => line.split(', ')[2])
      .sort();
    expect(names).to.deep.equal([0, 1, 2].map((i) => etcd.podName(i)));
    const pool = await podGet<PoolAnswer>(members.pods()[0]!, '/pool');
    expect(pool.members.map((m) => m.id).sort()).to.deep.equal(
      members
        .pods()
        .map((pod) => pod.name)
        .sort(),
    );
    // The Service sends to the 3 members on their `http` port.
    const endpoints = service.endpoints()[appService.spec!.ports![0]!.port]!;
    expect(endpoints.map(([, target]) => target)).to.deep.equal([port, port, port]);
    scrapeStart = Math.floor(Date.now() / 1000);
    prometheus = await startPrometheus();
  });

  it('every container runs as its securityContext says: its uid and groups, a read-only root, no capabilities, no privilege escalation', async () => {
    const shell = [
      'sh',
      '-c',
      'id -u; id -g; id -G; grep -E "^(CapBnd|NoNewPrivs):" /proc/self/status | tr -s "\t" " "; ' +
        // The options of the mount at / (mountinfo's fifth field is the mount point).
        'awk \'$5 == "/" { print $6 }\' /proc/self/mountinfo',
    ];
    const seen: string[] = [];
    for (const pod of [members.pods()[0]!, cluster.pod(etcd.podName(0))]) {
      const context = {
        ...pod.definition.spec.securityContext,
        ...pod.definition.spec.containers[0]!.securityContext,
      } as { runAsUser: number; runAsGroup: number; fsGroup?: number };
      const result = await pod.exec(shell);
      expect(result.code, result.stderr).to.equal(0);
      const [uid, gid, groups, capabilities, noNewPrivs, root] = result.stdout.trim().split('\n');
      expect([Number(uid), Number(gid)], pod.name).to.deep.equal([
        context.runAsUser,
        context.runAsGroup,
      ]);
      if (context.fsGroup !== undefined) {
        expect(groups!.split(' ').map(Number), 'fsGroup').to.include(context.fsGroup);
      }
      // The bounding set: not even a setuid binary could regain a capability.
      expect(capabilities).to.equal('CapBnd: 0000000000000000');
      expect(noNewPrivs).to.equal('NoNewPrivs: 1');
      expect(root!.split(','), 'the root is mounted read-only').to.include('ro');
      seen.push(`${pod.name} uid ${uid} gid ${gid} groups ${groups}`);
    }
    // The member writes only under /tmp, the chart's emptyDir.
    const member = members.pods()[0]!;
    const tmp = await member.exec(['sh', '-c', 'touch /tmp/probe && echo tmp-writable']);
    expect(tmp.stdout.trim(), tmp.stderr).to.equal('tmp-writable');
    measured(
      `security contexts in force: ${seen.join('; ')}; CapBnd 0, NoNewPrivs 1, root mounted ro`,
    );
  });

  it('helm test: the chart’s test pod GETs /work through the Service and exits 0', async () => {
    const hook = manifests.find(
      (m) => m.kind === 'Pod' && m.metadata.annotations?.['helm.sh/hook'] === 'test',
    ) as IPod;
    const pod = cluster.runPod({
      name: hook.metadata!.name!,
      labels: hook.metadata!.labels ?? {},
      spec: hook.spec!,
      aliases: [],
    });
    await pod.finished();
    expect(pod.lastExit, pod.recentOutput()).to.deep.include({ code: 0 });
  });

  it('curl /work from a client container through the Service name: answered by the oldest member', async () => {
    const curl = throughService('curl', { maxCalls: 1 });
    await curl.until('its answer', (r) => r.length >= 1, 30_000);
    const [answer] = await finish(curl);
    expect(answer?.status, JSON.stringify(answer)).to.equal(200);
    const pool = await podGet<PoolAnswer>(members.pods()[0]!, '/pool');
    const oldest = [...pool.members].sort((a, b) => a.createRevision - b.createRevision)[0]!;
    expect(answer!.body.performedBy).to.equal(oldest.id);
    expect(pool.leader?.id).to.equal(oldest.id);
    measured(`curl through the Service: ticket ${answer!.body.ticket} by ${oldest.id}, the oldest`);
  });

  it('kubectl delete pod <leader>: the successor leads and no call through the Service fails', async () => {
    const leader = await leaderPod();
    const loop = throughService('delete-leader');
    await loop.until('20 answers', (r) => r.length >= 20, 30_000);
    const termination = members.deletePod(leader);
    await loop.until(
      `an answer by a member other than ${leader.name}`,
      (r) =>
        r.some(
          (c) =>
            c.status === 200 && c.body.performedBy !== leader.name && c.startedAt > termAt(leader),
        ),
      60_000,
    );
    const { exit, ms, sigkilled } = await termination;
    await cluster.until(
      '3 members ready again',
      () => members.pods().filter((p) => p.serving).length === 3,
      60_000,
    );
    await loop.until('20 more answers', (r) => r.length >= 40, 30_000);
    const calls = await finish(loop);
    const sigterm = termAt(leader);
    const first = calls.find(
      (c) => c.status === 200 && c.body.performedBy !== leader.name && c.startedAt >= sigterm,
    );
    measured(
      `delete leader pod: SIGTERM to the first /work answered by the new leader ${first!.endedAt - sigterm} ms; exit ${exit.code} ${ms} ms after the delete (grace ${leader.definition.spec.terminationGracePeriodSeconds} s); failed calls ${failed(calls).length} of ${calls.length}`,
    );
    expect(exit.code).to.equal(0);
    expect(sigkilled).to.equal(false);
    expect(failed(calls), outcomes(calls)).to.deep.equal([]);
  });

  it('the leader’s container SIGKILLed and held down (a crash with no goodbye): a successor within the TTL and slack; restarted, the pod comes back as a follower', async () => {
    const leader = await leaderPod();
    const loop = throughService('node-crash', { timeoutMs: 15_000 });
    disrupted.add('service node-crash');
    await loop.until('20 answers', (r) => r.length >= 20, 30_000);
    const killedAt = Date.now();
    await leader.crashNode();
    const ttl = ttlMs();
    await loop.until(
      `an answer by a member other than ${leader.name}`,
      (r) =>
        r.some(
          (c) => c.status === 200 && c.body.performedBy !== leader.name && c.startedAt >= killedAt,
        ),
      ttl + 15_000,
    );
    const newLeader = await leaderPod();
    leader.nodeBack();
    await leader.waitReady(60_000);
    const view = await podGet<PoolAnswer>(leader, '/pool');
    await loop.until('20 more answers', (r) => r.length >= 60, 30_000);
    const calls = await finish(loop);
    const first = calls.find(
      (c) => c.status === 200 && c.body.performedBy !== leader.name && c.startedAt >= killedAt,
    )!;
    const failover = first.endedAt - killedAt;
    measured(
      `leader's container SIGKILLed (TTL ${ttl / 1000} s): SIGKILL to the first /work answered by ${newLeader.name} ${failover} ms; failed calls ${failed(calls).length} of ${calls.length} (${outcomes(failed(calls))}); restarts of the crashed pod ${leader.restarts}`,
    );
    expect(failover).to.be.below(ttl + CRASH_SLACK_MS);
    expect(view.self.isLeader, 'the restarted pod follows').to.equal(false);
    expect(view.leader?.id).to.equal(newLeader.name);
    expect(leader.restarts).to.equal(1);
  });

  it('kubectl delete pod of an etcd member: the pool keeps serving, and the member rejoins with its volume', async () => {
    // Asked until it answers (30 s at most): just after a member rejoins, the cluster may be
    // electing a raft leader and etcdctl's 5 s deadline can pass without an answer.
    const memberList = async () => {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const list = await cluster.pod(etcd.podName(0)).exec(['etcdctl', 'member', 'list']);
        if (list.code === 0) return list.stdout.trim().split('\n').sort();
        if (Date.now() > deadline) expect(list.code, list.stderr).to.equal(0);
      }
    };
    const membersBefore = await memberList();
    const loop = throughService('etcd-delete');
    await loop.until('20 answers', (r) => r.length >= 20, 30_000);
    const termination = await etcd.deletePod(1);
    await cluster.pod(etcd.podName(1)).waitReady(120_000);
    // The same member IDs, all started: the new pod came back with its claim's data directory
    // (without it, etcd could not rejoin under its old ID).
    expect(await memberList()).to.deep.equal(membersBefore);
    expect(membersBefore.every((line) => line.includes(', started, '))).to.equal(true);
    const health = await cluster
      .pod(etcd.podName(0))
      .exec(['etcdctl', 'endpoint', 'health', '--cluster']);
    await loop.until('20 more answers', (r) => r.length >= 40, 30_000);
    const calls = await finish(loop);
    measured(
      `delete etcd pod ${etcd.podName(1)}: exit ${termination.exit.code} after ${termination.ms} ms, back and ready; failed calls ${failed(calls).length} of ${calls.length}`,
    );
    // etcdctl 3.4 prints the health of each endpoint on stderr.
    const healthText = health.stdout + health.stderr;
    expect(health.code, healthText).to.equal(0);
    expect(healthText.match(/is healthy/g), healthText).to.have.length(3);
    expect(failed(calls), outcomes(calls)).to.deep.equal([]);
  });

  it('a rolling update to a new image tag: the strategy keeps every member available and no call fails', async () => {
    const pdb = manifests.find(
      (m) => m.kind === 'PodDisruptionBudget' && m.metadata.name === members.name,
    ) as IPodDisruptionBudget;
    const loop = throughService('rollout');
    await loop.until('20 answers', (r) => r.length >= 20, 30_000);
    let fewestServing = Infinity;
    const watch = () => {
      fewestServing = Math.min(fewestServing, members.pods().filter((p) => p.serving).length);
    };
    cluster.on('change', watch);
    const started = Date.now();
    await members.rollout(nextDeployment.spec!.template, (line) => progress(`rollout: ${line}`));
    cluster.off('change', watch);
    const before = loop.records.length;
    await loop.until('20 answers after the rollout', (r) => r.length >= before + 20, 30_000);
    const calls = await finish(loop);
    const performers = calls.filter((c) => c.status === 200).map((c) => c.body.performedBy);
    const changes = performers.filter((p, i) => i > 0 && p !== performers[i - 1]).length;
    measured(
      `rolling update: ${((Date.now() - started) / 1000).toFixed(1)} s, fewest ready members ${fewestServing}, leader changes ${changes}, failed calls ${failed(calls).length} of ${calls.length}`,
    );
    expect(
      members.pods().every((p) => p.definition.spec.containers[0]!.image!.endsWith(`:${NEXT_TAG}`)),
    ).to.equal(true);
    // Here the newest-ready pods go first, so the leader (the oldest) goes last: one change. A
    // real ReplicaSet ranks ready times in log-2 buckets and picks within one at random, so a
    // cluster may see two.
    expect(changes).to.be.within(1, 2);
    expect(fewestServing).to.be.at.least(members.replicas);
    expect(fewestServing).to.be.at.least(members.replicas - Number(pdb.spec!.maxUnavailable));
    expect(failed(calls), outcomes(calls)).to.deep.equal([]);
  });

  it('the leader cut off the network stops acting as leader before its successor’s first ticket (asked from inside the pod)', async () => {
    const leader = await leaderPod();
    const loop = throughService('partition');
    disrupted.add('service partition');
    await loop.until('20 answers', (r) => r.length >= 20, 30_000);
    const inside = ClientLoop.insidePod(leader, {
      url: `http://127.0.0.1:${port}/work?payload=inside`,
      asked: leader.name,
      intervalMs: 20,
      maxMs: 12_000,
      // Longer than LEADERLESS_WAIT_MS + FORWARD_TIMEOUT_MS: every call gets the member's answer.
      timeoutMs: 15_000,
    });
    await inside.until('5 answers inside', (r) => r.length >= 5, 10_000);
    const cutAt = Date.now();
    await leader.disconnect();
    await loop.until(
      `an answer by a member other than ${leader.name}`,
      (r) =>
        r.some(
          (c) => c.status === 200 && c.body.performedBy !== leader.name && c.startedAt >= cutAt,
        ),
      30_000,
    );
    const insideCalls = await inside.stop();
    records.push(...insideCalls);
    await leader.reconnect();
    await cluster.until(
      '3 members ready',
      () => members.pods().filter((p) => p.serving).length === 3,
      60_000,
    );
    const calls = await finish(loop);
    const lastAsLeader = insideCalls
      .filter((c) => c.status === 200 && c.body.performedBy === leader.name)
      .at(-1)!;
    const successorTerm = Math.max(
      ...calls.filter((c) => c.status === 200).map((c) => c.body.term!),
    );
    const claim = (await claims(cluster.logDir)).find((c) => c.term === successorTerm)!;
    const firstTicket = calls.find((c) => c.status === 200 && c.body.term === successorTerm)!;
    measured(
      `leader cut off the network: its last ticket inside ${lastAsLeader.endedAt - cutAt} ms after the cut; ${claim.member} claimed term ${claim.term} at ${claim.at - cutAt} ms, first ticket ${firstTicket.body.ticket} answered at ${firstTicket.endedAt - cutAt} ms; calls through the Service ${outcomes(calls)}`,
    );
    expect(lastAsLeader.endedAt, 'old leader stopped before the new claim').to.be.below(claim.at);
    expect(lastAsLeader.body.ticket!).to.be.below(firstTicket.body.ticket!);
    expect(
      insideCalls.filter(
        (c) => c.startedAt > claim.at && c.status === 200 && c.body.performedBy === leader.name,
      ),
    ).to.deep.equal([]);
  });

  it('every answer of the rehearsal: tickets never repeat, terms only rise, only claimants perform, no stale leader', async () => {
    const violations = checkInvariants(records, await claimedTerms(cluster.logDir), disrupted);
    measured(
      `invariants over ${records.length} answers: ${violations.length} violations (${outcomes(records)})`,
    );
    expect(violations).to.deep.equal([]);
  });

  it('Prometheus scrapes the pods on the ServiceMonitor’s port and path; every dashboard query returns data', async () => {
    const end = Math.ceil(Date.now() / 1000);
    const variables = {
      datasource: 'prometheus',
      namespace: NAMESPACE,
      pool: 'default',
      // The job prometheus-operator gives the etcd ServiceMonitor's targets: its Service.
      etcd_job: manifests.find(
        (m) =>
          m.kind === 'Service' && m.metadata.labels?.['app.kubernetes.io/component'] === 'etcd',
      )!.metadata.name,
      __rate_interval: '15s',
      __interval: '2s',
    };
    const empty: string[] = [];
    for (const { where, expr } of dashboardQueries(loadDashboard())) {
      const series = await prometheus!.queryRange(fillVariables(expr, variables), scrapeStart, end);
      if (!series.some((s) => s.values.some(isFiniteSample))) empty.push(where);
    }
    expect(empty, 'dashboard queries without data').to.deep.equal([]);
  });

  /** The time the kubelet sent SIGTERM to `pod`'s container. */
  function termAt(pod: ContainerPod): number {
    return pod.events.find((e) => e.what.startsWith('SIGTERM'))?.at ?? Infinity;
  }

  /**
   * Debian's Prometheus, one job per ServiceMonitor of the chart (the members', the bundled
   * etcd's), its targets the pods of the Service the monitor selects (file_sd, rewritten on
   * change), labelled as prometheus-operator labels them.
   */
  async function startPrometheus(): Promise<PrometheusServer> {
    type Monitor = Manifest & {
      spec: {
        selector: { matchLabels: Record<string, string> };
        endpoints: { port: string; path: string; interval: string; scrapeTimeout: string }[];
      };
    };
    const monitors = manifests.filter((m) => m.kind === 'ServiceMonitor') as Monitor[];
    expect(monitors.length, 'ServiceMonitors of the members and of etcd').to.equal(2);
    const jobs = monitors.map((monitor) => {
      const selected = manifests.filter(
        (m) =>
          m.kind === 'Service' &&
          Object.entries(monitor.spec.selector.matchLabels).every(
            ([k, v]) => m.metadata.labels?.[k] === v,
          ),
      ) as IService[];
      expect(selected, monitor.metadata.name).to.have.length(1);
      const service = selected[0]!;
      const endpoint = monitor.spec.endpoints[0]!;
      const file = path.join(cluster.node.stateDir, `targets-${monitor.metadata.name}.json`);
      const write = () =>
        writeFileSync(
          file,
          JSON.stringify(
            cluster
              .podsMatching(service.spec!.selector!)
              .filter((pod) => !pod.isTerminating)
              .map((pod) => ({
                targets: [`${pod.ip}:${pod.port(endpoint.port)}`],
                // What prometheus-operator sets for a ServiceMonitor target.
                labels: {
                  namespace: NAMESPACE,
                  service: service.metadata!.name!,
                  pod: pod.name,
                  container: pod.definition.spec.containers[0]!.name,
                  endpoint: endpoint.port,
                  job: service.metadata!.name!,
                },
              })),
          ),
        );
      write();
      cluster.on('change', write);
      return {
        job_name: `serviceMonitor/${monitor.metadata.name}`,
        metrics_path: endpoint.path,
        scrape_interval: endpoint.interval,
        scrape_timeout: endpoint.scrapeTimeout,
        file_sd_configs: [{ files: [file], refresh_interval: '1s' }],
      };
    });
    const interval = jobs[0]!.scrape_interval;
    return PrometheusServer.start({
      global: { scrape_interval: interval, evaluation_interval: interval },
      scrape_configs: jobs,
    });
  }
});
