/**
 * The contract between the chart and the app, played as the kubelet would: render the chart,
 * start three pods' containers from exactly what the Deployment declares (env with the
 * downward API filled in, the image's CMD, the declared port) against a real etcd, call every
 * declared probe on its declared port and path, run the helm test hook against them, then
 * delete the leader pod the kubelet's way (preStop hook, SIGTERM) and check that it hands over
 * cleanly and exits 0 within terminationGracePeriodSeconds. Chart and app cannot drift apart
 * silently: a renamed variable, a moved probe path or a grace period shorter than the
 * shutdown fails here.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { expect } from 'chai';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPod } from 'kubernetes-models/v1/Pod';
import type { IService } from 'kubernetes-models/v1/Service';
import { EtcdCluster } from '../support/etcdCluster.js';
import { parseDockerfile } from './support/dockerfile.js';
import {
  SimulatedContainer,
  canBind,
  imageOf,
  simulatedPod,
  type Image,
} from './support/kubelet.js';
import {
  REPO_ROOT,
  TOOLSETS,
  ensureTools,
  find,
  renderChart,
  renderNotes,
  type Manifest,
  type Values,
} from './support/tools.js';

interface PoolAnswer {
  self: { id: string };
  leader: { id: string; url: string; term: number } | null;
  members: { id: string; url: string }[];
}

interface WorkAnswer {
  status: number;
  body: { ticket?: number; performedBy?: string; via?: string[]; term?: number };
}

const POD_IPS = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
const POLL_MS = 50;
const MAX_WORK_CALLS = 3000;

async function getJson<T>(url: string, timeoutMs = 2000): Promise<{ status: number; body: T }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: response.status, body: (await response.json()) as T };
}

describe('the kubelet contract: pods rendered by the chart run the app as it expects', function () {
  this.timeout(120_000);
  const image: Image = imageOf(
    parseDockerfile(readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8')).at(-1)!,
  );
  let etcd: EtcdCluster;
  let values: Values;
  let manifests: Manifest[];
  let deployment: IDeployment;
  let container: IContainer;
  let port: number;
  const pods: SimulatedContainer[] = [];
  let leader: SimulatedContainer;

  const urlOf = (pod: SimulatedContainer, route: string) => `http://${pod.pod.ip}:${port}${route}`;

  before(async () => {
    ensureTools();
    etcd = await EtcdCluster.start({ size: 1 });
    values = {
      replicaCount: 3,
      etcd: {
        enabled: false,
        endpoints: etcd.endpoints,
        prefix: `/spl-chart-contract-${process.pid}`,
      },
    };
    manifests = await renderChart(TOOLSETS.at(-1)!, values);
    deployment = find<IDeployment>(manifests, 'Deployment');
    container = deployment.spec!.template.spec!.containers[0]!;
    port = container.ports!.find((p) => p.name === 'http')!.containerPort;
  });

  after(async () => {
    for (const pod of pods) pod.signal('SIGKILL');
    await Promise.all(pods.map((pod) => pod.exited));
    await etcd?.close();
  });

  it(`${POD_IPS.length} pods start from the rendered env and the image's CMD; every probe passes on its declared port and path`, async () => {
    expect(deployment.spec!.replicas).to.equal(POD_IPS.length);
    for (const ip of POD_IPS) {
      expect(
        await canBind(ip, port),
        `${ip}:${port} is taken: stop whatever listens there`,
      ).to.equal(true);
    }
    const labels = deployment.spec!.template.metadata!.labels!;
    const started = Date.now();
    // A Deployment creates its pods at once; they race to register, as in a cluster.
    for (const [i, ip] of POD_IPS.entries()) {
      const name = `${deployment.metadata!.name}-7c9d5f8b46-${['x2kqp', 'm4vzt', 'h7wcn'][i]}`;
      pods.push(
        SimulatedContainer.start(simulatedPod(name, ip, labels), container, image, manifests, {
          HOST: ip,
        }),
      );
    }
    const liveness = container.livenessProbe!;
    const readiness = container.readinessProbe!;
    await Promise.all(
      pods.map(async (pod) => {
        let liveAt: number | undefined;
        let readyAt: number | undefined;
        while (readyAt === undefined && Date.now() - started < 30_000) {
          if (!pod.running) {
            throw new Error(
              `${pod.pod.name} exited (${await pod.describeExit()}):\n${pod.recentOutput()}`,
            );
          }
          if (liveAt === undefined && (await pod.probe(liveness))) liveAt = Date.now();
          if (await pod.probe(readiness)) readyAt = Date.now();
          await delay(POLL_MS);
        }
        expect(readyAt, `${pod.pod.name} ready:\n${pod.recentOutput()}`).to.be.a('number');
        // The kubelet restarts a container whose liveness fails failureThreshold times in a
        // row after initialDelaySeconds: the member must be live well before that.
        const livenessBudgetMs =
          ((liveness.initialDelaySeconds ?? 0) +
            (liveness.periodSeconds ?? 10) * (liveness.failureThreshold ?? 3)) *
          1000;
        expect((liveAt ?? Infinity) - started).to.be.below(livenessBudgetMs);
        console.log(
          `      measured: ${pod.pod.name} live after ${liveAt! - started} ms, ready after ${readyAt! - started} ms`,
        );
      }),
    );
  });

  it('the members agree on one leader, know each other by POD_NAME and the advertised pod IP, and /work through every pod is done by the leader', async () => {
    let views: PoolAnswer[] = [];
    const deadline = Date.now() + 10_000;
    for (;;) {
      views = await Promise.all(
        pods.map(async (pod) => (await getJson<PoolAnswer>(urlOf(pod, '/pool'))).body),
      );
      const named = new Set(views.map((view) => view.leader?.id));
      if ((named.size === 1 && !named.has(undefined)) || Date.now() > deadline) break;
      await delay(POLL_MS);
    }
    const leaderId = views[0]!.leader!.id;
    expect(views.map((v) => v.leader?.id)).to.deep.equal(pods.map(() => leaderId));
    leader = pods.find((pod) => pod.pod.name === leaderId)!;
    expect(leader, `the leader ${leaderId} is one of the pods`).to.not.equal(undefined);
    expect(views[0]!.leader!.url).to.equal(`http://${leader.pod.ip}:${port}`);
    for (const [i, pod] of pods.entries()) {
      expect(views[i]!.self.id, 'POD_NAME is the member id').to.equal(pod.pod.name);
      expect(views[0]!.members.find((m) => m.id === pod.pod.name)?.url).to.equal(
        `http://${pod.pod.ip}:${port}`,
      );
      const work = await getJson<WorkAnswer['body']>(urlOf(pod, '/work?payload=contract'));
      expect(work.status).to.equal(200);
      expect(work.body.performedBy).to.equal(leaderId);
      expect(work.body.via).to.deep.equal(pod === leader ? [leaderId] : [pod.pod.name, leaderId]);
    }
  });

  it("NOTES.txt's way to find the leader names it", async () => {
    const notes = await renderNotes(values);
    const sed = /LEADER=\$\(curl -s (\S+)\/pool \| sed -n '([^']+)'\)/.exec(notes);
    expect(sed, notes).to.not.equal(null);
    // The port-forward of the notes stands for any member's port.
    const pool = await fetch(urlOf(pods[0]!, '/pool')).then((response) => response.text());
    const found = spawnSync('sed', ['-n', sed![2]!], { input: pool, encoding: 'utf8' });
    expect(found.stdout.trim()).to.equal(leader.pod.name);
  });

  it('the helm test hook, run against the pods as the Service would route it, passes', async () => {
    const hook = find<IPod>(manifests, 'Pod');
    const hookContainer = hook.spec!.containers[0]!;
    const service = find<IService>(manifests, 'Service', deployment.metadata!.name);
    // kube-proxy stand-in: the Service's name and port lead to a ready member's pod IP.
    const serviceAddress = `${service.metadata!.name}:${service.spec!.ports![0]!.port}`;
    const follower = pods.find((pod) => pod !== leader)!;
    const routed: IContainer = {
      ...hookContainer,
      env: hookContainer.env!.map((variable) =>
        variable.name === 'WORK_URL'
          ? {
              ...variable,
              value: variable.value!.replace(serviceAddress, `${follower.pod.ip}:${port}`),
            }
          : variable,
      ),
    };
    expect(routed.env).to.not.deep.equal(hookContainer.env);
    const run = SimulatedContainer.start(
      simulatedPod(hook.metadata!.name!, '127.0.0.5', hook.metadata!.labels ?? {}),
      routed,
      image,
      manifests,
      {},
    );
    const status = await run.exited;
    expect(status.code, run.recentOutput()).to.equal(0);
    expect(run.recentOutput()).to.match(/^ok: \{/);
  });

  it('deleting the leader pod (preStop hook, then SIGTERM) hands over at once, loses no /work, and exits 0 within terminationGracePeriodSeconds', async () => {
    const graceMs = deployment.spec!.template.spec!.terminationGracePeriodSeconds! * 1000;
    const followers = pods.filter((pod) => pod !== leader);
    const answers: WorkAnswer[] = [];
    let working = true;
    const workLoop = (async () => {
      // Bounded in time (the handover) and in count; a short pause keeps it a client, not a load.
      for (let i = 0; working && i < MAX_WORK_CALLS; i++) {
        const pod = followers[i % followers.length]!;
        answers.push(
          await getJson<WorkAnswer['body']>(urlOf(pod, `/work?payload=${i}`), 10_000).catch(
            (error: unknown) => ({ status: 0, body: { performedBy: String(error) } }),
          ),
        );
        await delay(5);
      }
    })();

    const deletedAt = Date.now();
    await leader.preStop();
    const preStopMs = Date.now() - deletedAt;
    expect(leader.running, 'the leader serves through its preStop hook').to.equal(true);
    const answersBeforeTerm = answers.length;

    const termAt = Date.now();
    leader.signal('SIGTERM');
    const killTimer = setTimeout(() => leader.signal('SIGKILL'), graceMs - preStopMs);
    let handoverMs: number | undefined;
    let notReadyMs: number | undefined;
    while (handoverMs === undefined || (notReadyMs === undefined && leader.running)) {
      if (Date.now() - termAt > graceMs) break;
      if (notReadyMs === undefined && !(await leader.probe(container.readinessProbe!))) {
        notReadyMs = Date.now() - termAt;
      }
      if (handoverMs === undefined) {
        const view = await getJson<PoolAnswer>(urlOf(followers[0]!, '/pool')).catch(
          () => undefined,
        );
        const id = view?.body.leader?.id;
        if (id !== undefined && id !== leader.pod.name) handoverMs = Date.now() - termAt;
      }
      await delay(10);
    }
    const status = await leader.exited;
    const exitMs = Date.now() - termAt;
    clearTimeout(killTimer);
    await delay(300);
    working = false;
    await workLoop;

    console.log(
      `      measured: preStop ${preStopMs} ms; after SIGTERM: not ready ${notReadyMs} ms, new leader ${handoverMs} ms, exit ${exitMs} ms (grace ${graceMs} ms); ${answers.length} /work calls through the followers`,
    );
    expect(status, leader.recentOutput()).to.deep.equal({ code: 0, signal: null });
    expect(preStopMs + exitMs).to.be.below(graceMs);
    expect(handoverMs, 'a new leader after SIGTERM').to.be.a('number').below(2000);
    expect(notReadyMs, 'the leader turns not ready after SIGTERM').to.be.a('number');
    expect(answersBeforeTerm).to.be.greaterThan(0);
    const failed = answers.filter((answer) => answer.status !== 200);
    expect(failed, JSON.stringify(failed)).to.deep.equal([]);
    const performers = answers.map((answer) => answer.body.performedBy);
    const newLeader = performers.at(-1)!;
    expect(followers.map((pod) => pod.pod.name)).to.include(newLeader);
    expect(performers.indexOf(newLeader)).to.be.greaterThan(0);
    expect(
      performers.slice(performers.indexOf(newLeader)).every((id) => id === newLeader),
    ).to.equal(true);
    const tickets = answers.map((answer) => answer.body.ticket!);
    expect(tickets.every((ticket, i) => i === 0 || ticket > tickets[i - 1]!)).to.equal(true);
  });
});
