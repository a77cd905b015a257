/**
 * The controllers of the rehearsal, doing what kube-controller-manager does with the chart's
 * Deployment and StatefulSet:
 *
 * - Deployment: a ReplicaSet per pod template (pods `<deployment>-<hash>-<random>`, labelled
 *   pod-template-hash); a deleted pod is replaced at once; a rolling update follows the
 *   spec's strategy (maxSurge, maxUnavailable): a new pod, and once it is ready an old one
 *   goes, the most recently ready first, as a ReplicaSet scales down.
 * - StatefulSet: pods `<name>-0…N-1` started together under Parallel pod management, each
 *   with its claims (`<template>-<pod>`, kept across deletions), its DNS name under the
 *   governing headless Service, and the Service's own name; a deleted pod comes back under
 *   the same name, with the same claims, once the old one has gone.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import type { Cluster } from './cluster.js';
import type { ContainerPod, Termination } from './containerPod.js';

/** The alphabet of generated names (no vowels, no look-alikes), as the API server uses. */
const NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

function suffix(bytes: Buffer, length: number): string {
  return [...bytes.subarray(0, length)]
    .map((b) => NAME_ALPHABET[b % NAME_ALPHABET.length])
    .join('');
}

interface ReplicaSet {
  name: string;
  hash: string;
  template: IPodTemplateSpec;
  desired: number;
}

export class DeploymentController {
  private readonly replicaSets: ReplicaSet[] = [];
  private reconciling = Promise.resolve();

  constructor(
    private readonly cluster: Cluster,
    readonly deployment: IDeployment,
  ) {
    cluster.on('change', () => void this.reconcile());
  }

  get name(): string {
    return this.deployment.metadata!.name!;
  }

  get replicas(): number {
    return this.deployment.spec!.replicas ?? 1;
  }

  /** The pods of the Deployment that are not terminating, oldest first. */
  pods(): ContainerPod[] {
    return this.cluster
      .podsMatching(this.deployment.spec!.selector.matchLabels ?? {})
      .filter((pod) => !pod.isTerminating)
      .sort((a, b) => a.createdAt - b.createdAt);
  }

  private replicaSet(template: IPodTemplateSpec): ReplicaSet {
    const hash = suffix(createHash('sha256').update(JSON.stringify(template)).digest(), 10);
    let set = this.replicaSets.find((r) => r.hash === hash);
    if (!set) {
      set = { name: `${this.name}-${hash}`, hash, template, desired: 0 };
      this.replicaSets.push(set);
    }
    return set;
  }

  private podsOf(set: ReplicaSet): ContainerPod[] {
    return this.pods().filter((pod) => pod.labels['pod-template-hash'] === set.hash);
  }

  /** Creates the first ReplicaSet with every replica at once. */
  start(): void {
    this.replicaSet(this.deployment.spec!.template).desired = this.replicas;
    void this.reconcile();
  }

  /** Brings every ReplicaSet to its desired count: creates, or deletes the newest-ready first. */
  private reconcile(): Promise<void> {
    this.reconciling = this.reconciling.then(() => {
      if (this.cluster.closed) return;
      for (const set of this.replicaSets) {
        const pods = this.podsOf(set);
        for (let i = pods.length; i < set.desired; i++) {
          const name = `${set.name}-${suffix(randomBytes(5), 5)}`;
          this.cluster.runPod({
            name,
            labels: { ...(set.template.metadata?.labels ?? {}), 'pod-template-hash': set.hash },
            spec: set.template.spec!,
            aliases: [],
          });
        }
        // Not ready first, then the most recently ready (the controller's pod ranking).
        const rank = (pod: ContainerPod) => (pod.serving ? pod.readyAt! : Infinity);
        const extra = pods
          .sort((a, b) => (rank(a) === rank(b) ? 0 : rank(b) > rank(a) ? 1 : -1))
          .slice(0, Math.max(0, pods.length - set.desired));
        for (const pod of extra) void pod.delete();
      }
    });
    return this.reconciling;
  }

  /** `kubectl delete pod`: the ReplicaSet replaces it at once; resolves when the old one exited. */
  deletePod(pod: ContainerPod): Promise<Termination> {
    const termination = pod.delete();
    void this.reconcile();
    return termination;
  }

  /**
   * A rolling update to `template` under the Deployment's strategy. Resolves when every old
   * pod has exited. `onStep` hears each step (for the test's record).
   */
  async rollout(template: IPodTemplateSpec, onStep: (line: string) => void): Promise<void> {
    const strategy = this.deployment.spec!.strategy?.rollingUpdate ?? {};
    const maxSurge = Number(strategy.maxSurge ?? 1);
    const maxUnavailable = Number(strategy.maxUnavailable ?? 0);
    if (!Number.isInteger(maxSurge) || !Number.isInteger(maxUnavailable)) {
      throw new Error('percentages in the rolling update strategy are not modelled');
    }
    const next = this.replicaSet(template);
    const old = this.replicaSets.filter((r) => r !== next);
    const terminations: Promise<unknown>[] = [];
    const oldPods = () => old.flatMap((set) => this.podsOf(set));
    while (next.desired < this.replicas || oldPods().length > 0) {
      const ready = this.pods().filter((pod) => pod.serving).length;
      const total = this.pods().length;
      if (next.desired < this.replicas && total < this.replicas + maxSurge) {
        next.desired++;
        onStep(`new ReplicaSet ${next.name} scaled to ${next.desired}`);
        await this.reconcile();
        continue;
      }
      // Scale an old ReplicaSet down only while enough pods stay available.
      if (oldPods().length > 0 && ready > this.replicas - maxUnavailable) {
        const set = old.find((r) => this.podsOf(r).length > 0)!;
        set.desired = this.podsOf(set).length - 1;
        const before = new Set(this.podsOf(set));
        onStep(`old ReplicaSet ${set.name} scaled to ${set.desired}`);
        await this.reconcile();
        const going = [...this.cluster.pods].filter((p) => before.has(p) && p.isTerminating);
        terminations.push(...going.map((p) => p.finished()));
        continue;
      }
      await new Promise((resolve) => this.cluster.once('change', resolve));
    }
    await Promise.all(terminations);
  }
}

export class StatefulSetController {
  constructor(
    private readonly cluster: Cluster,
    readonly statefulSet: IStatefulSet,
  ) {}

  get name(): string {
    return this.statefulSet.metadata!.name!;
  }

  podName(ordinal: number): string {
    return `${this.name}-${ordinal}`;
  }

  /** Starts every ordinal at once (Parallel) or, under OrderedReady, one after another. */
  async start(): Promise<void> {
    const spec = this.statefulSet.spec!;
    for (let ordinal = 0; ordinal < (spec.replicas ?? 1); ordinal++) {
      const pod = this.runOrdinal(ordinal);
      if (spec.podManagementPolicy !== 'Parallel') await pod.waitReady(300_000);
    }
  }

  private runOrdinal(ordinal: number): ContainerPod {
    const spec = this.statefulSet.spec!;
    const name = this.podName(ordinal);
    // A StatefulSet's pods resolve under its governing Service: the chart always names one.
    const serviceName = spec.serviceName!;
    const domain = this.cluster.node.network.serviceName(serviceName);
    const claims = Object.fromEntries(
      (spec.volumeClaimTemplates ?? []).map((t) => [
        t.metadata!.name!,
        `${t.metadata!.name}-${name}`,
      ]),
    );
    const volumes = [
      ...(spec.template.spec!.volumes ?? []),
      ...Object.entries(claims).map(([volume, claimName]) => ({
        name: volume,
        persistentVolumeClaim: { claimName },
      })),
    ];
    return this.cluster.runPod({
      name,
      labels: {
        ...(spec.template.metadata?.labels ?? {}),
        'statefulset.kubernetes.io/pod-name': name,
      },
      spec: { ...spec.template.spec!, volumes, hostname: name, subdomain: serviceName },
      aliases: [`${name}.${domain}`, domain],
      claims,
    });
  }

  /** `kubectl delete pod`: it exits the kubelet's way, then comes back under its name. */
  async deletePod(ordinal: number): Promise<Termination> {
    const pod = this.cluster.pod(this.podName(ordinal));
    const termination = await pod.delete();
    await pod.finished();
    if (!this.cluster.closed) this.runOrdinal(ordinal);
    return termination;
  }
}
