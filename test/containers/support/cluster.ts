/**
 * A one-node cluster for the rehearsal: the pod network, the node (the container kubelet's
 * settings) and every pod that runs on it, with a 'change' event whenever a pod is created,
 * turns ready or not ready, starts terminating or is gone. Controllers (workloads.ts) create
 * and delete pods; Services (serviceProxy.ts) and scrape targets follow the pods.
 *
 * Everything this run creates carries its run id: close() removes exactly that.
 */
import { EventEmitter } from 'node:events';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import type { Manifest } from '../../chart/support/tools.js';
import { ContainerPod, type Node, type PodDefinition } from './containerPod.js';
import { podman } from './podman.js';
import { PodNetwork } from './podNetwork.js';

const RUN_PREFIX = 'spl-rh-';
const RUN_LABEL = 'io.service-pool-leader.rehearsal';

/** The pid in a run id `spl-rh-<pid>-<suffix>`, if it is one. */
function runPid(runId: string): number | undefined {
  const match = /^spl-rh-(\d+)-/.exec(runId);
  return match ? Number(match[1]) : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the containers and networks of earlier rehearsals whose process is gone (a run
 * killed before its cleanup), found by this project's label and name prefix only.
 */
async function sweepLeftovers(log: (line: string) => void): Promise<void> {
  const containers = await podman([
    'ps',
    '--all',
    '--filter',
    `label=${RUN_LABEL}`,
    '--format',
    `{{.ID}} {{index .Labels "${RUN_LABEL}"}}`,
  ]);
  const stale = new Set<string>();
  const ids: string[] = [];
  for (const line of containers.stdout.split('\n').filter(Boolean)) {
    const [id, runId] = line.split(' ');
    const pid = runPid(runId ?? '');
    if (id && runId && pid !== undefined && !isAlive(pid)) {
      ids.push(id);
      stale.add(runId);
    }
  }
  if (ids.length > 0) {
    await podman(['rm', '--force', '--time', '0', ...ids], {
      allowFailure: true,
      timeoutMs: 120_000,
    });
  }
  const networks = await podman(['network', 'ls', '--format', '{{.Name}}']);
  for (const name of networks.stdout.split('\n').filter((n) => n.startsWith(RUN_PREFIX))) {
    const pid = runPid(name);
    if (pid !== undefined && !isAlive(pid)) {
      await podman(['network', 'rm', '--force', name], { allowFailure: true });
      stale.add(name);
    }
  }
  if (stale.size > 0) log(`removed what earlier runs left behind: ${[...stale].join(', ')}`);
}

export interface ClusterOptions {
  namespace: string;
  objects: Manifest[];
  images: Record<string, string>;
  adjustProbe?: (image: string, probe: IProbe) => IProbe;
  log: (line: string) => void;
}

export class Cluster extends EventEmitter {
  readonly pods = new Set<ContainerPod>();
  /** Set by close(): controllers create nothing more. */
  closed = false;

  private constructor(readonly node: Node) {
    super();
    this.setMaxListeners(100);
  }

  static async create(options: ClusterOptions): Promise<Cluster> {
    await sweepLeftovers(options.log);
    const runId = `${RUN_PREFIX}${process.pid}-${Date.now().toString(36).slice(-4)}`;
    const stateDir = await mkdtemp(path.join(os.tmpdir(), `${runId}-`));
    await mkdir(path.join(stateDir, 'logs'));
    const network = await PodNetwork.create(runId, options.namespace);
    return new Cluster({
      network,
      runId,
      label: `${RUN_LABEL}=${runId}`,
      objects: options.objects,
      images: options.images,
      stateDir,
      ...(options.adjustProbe ? { adjustProbe: options.adjustProbe } : {}),
      log: options.log,
    });
  }

  get logDir(): string {
    return path.join(this.node.stateDir, 'logs');
  }

  /** Creates a pod and starts its container; 'change' fires as it progresses. */
  runPod(definition: PodDefinition): ContainerPod {
    if (this.closed) throw new Error(`the cluster is closed: pod ${definition.name} not created`);
    const pod = new ContainerPod(this.node, definition);
    this.pods.add(pod);
    pod.on('change', () => this.emit('change'));
    void pod.finished().then(() => {
      this.pods.delete(pod);
      this.emit('change');
    });
    this.emit('change');
    return pod;
  }

  podsMatching(selector: Record<string, string>): ContainerPod[] {
    return [...this.pods].filter((pod) =>
      Object.entries(selector).every(([key, value]) => pod.labels[key] === value),
    );
  }

  pod(name: string): ContainerPod {
    const found = [...this.pods].find((pod) => pod.name === name && !pod.isTerminating);
    if (!found) throw new Error(`no live pod ${name}`);
    return found;
  }

  /**
   * Resolves once `condition` holds, checked at every change and every 200 ms; rejects after
   * `timeoutMs` with `what`.
   */
  async until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs: number) {
    const deadline = Date.now() + timeoutMs;
    while (!(await condition())) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.off('change', done);
          resolve();
        };
        const timer = setTimeout(done, 200);
        this.on('change', done);
      });
    }
  }

  /** Removes every container and the network of this run, and its state directory. */
  async close(): Promise<void> {
    this.closed = true;
    // Services and scrape targets follow pods into the state directory, which goes below.
    this.removeAllListeners('change');
    for (const pod of this.pods) pod.abandon();
    const ids = await podman(['ps', '--all', '--quiet', '--filter', `label=${this.node.label}`], {
      allowFailure: true,
    });
    const list = ids.stdout.split('\n').filter(Boolean);
    if (list.length > 0) {
      await podman(['rm', '--force', '--time', '0', ...list], {
        allowFailure: true,
        timeoutMs: 120_000,
      });
    }
    const left = [...this.pods];
    const ended = await Promise.race([
      Promise.all(left.map((pod) => pod.finished().catch(() => undefined))).then(() => true),
      delay(30_000).then(() => false),
    ]);
    if (!ended) {
      this.node.log(
        `close: still running after 30 s: ${left
          .filter((p) => this.pods.has(p))
          .map((p) => p.name)
          .join(', ')}`,
      );
    }
    await this.node.network.remove();
    await rm(this.node.stateDir, { recursive: true, force: true });
  }
}
