/**
 * One pod, run the way the kubelet runs it, in a real container runtime (podman with runc): a
 * pod from `helm template` output becomes a container of the image the spec names, with
 *
 * - the environment of the spec (envFrom, env in order with $(VAR) expansion, the downward
 *   API: metadata.name, metadata.namespace, metadata.uid, status.podIP, …) and the image's own
 *   ENV underneath, as the runtime merges them;
 * - command over the image's ENTRYPOINT, args over its CMD, workingDir;
 * - the security context: runAsUser/runAsGroup, runAsNonRoot checked against the image's
 *   user as the kubelet checks it (a non-numeric image user cannot be verified), fsGroup and
 *   supplementalGroups as extra groups and as the group owner of writable volumes,
 *   readOnlyRootFilesystem, capabilities, allowPrivilegeEscalation: false as no-new-privileges;
 * - volumes: emptyDir as a directory of the pod that outlives a container restart (medium
 *   Memory as tmpfs), a PersistentVolumeClaim as a directory that outlives the pod,
 *   ConfigMap and Secret volumes as files;
 * - resources.limits as memory and CPU limits, requests.cpu as CPU shares;
 * - its own IP on the pod network, the pod's hostname and the DNS names its Services give;
 * - probes from the node (this machine) against the pod IP with the spec's timings and
 *   thresholds: readiness decides whether Services send to it, a failing liveness probe
 *   restarts the container, a startup probe holds the other two back;
 * - restartPolicy with the kubelet's back-off (the first restart at once, then 10 s doubling
 *   to 300 s, reset after 10 min of running);
 * - on delete: not ready at once (Services stop sending), the preStop hook, SIGTERM, SIGKILL
 *   once terminationGracePeriodSeconds has passed.
 *
 * One container per pod (the chart's pods have one). Fields that would change how the pod runs
 * and are not modelled (init containers, postStart hooks, hostNetwork, subPath, privileged,
 * other volume kinds and probe kinds) are refused with their name. Not modelled and not
 * refused, since the chart uses none of them: dnsPolicy, volume `items`, a probe's own
 * terminationGracePeriodSeconds, fsGroupChangePolicy (ownership is always set).
 */
import { EventEmitter } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { chmod, chown, mkdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import type { ISecurityContext } from 'kubernetes-models/v1/SecurityContext';
import { describeExit, type ExitStatus } from '../../../src/demo/childProcesses.js';
import { containerEnvironment, expand, type SimulatedPod } from '../../chart/support/kubelet.js';
import type { Manifest } from '../../chart/support/tools.js';
import { podman, podmanStream, ULIMITS } from './podman.js';
import type { PodNetwork } from './podNetwork.js';

/** What the node offers every pod: the network, the images, the objects of the release. */
export interface Node {
  network: PodNetwork;
  /** Prefix of every container name this run creates, e.g. `spl-rh-1a2b`. */
  runId: string;
  /** Label set on every container of this run, so that only they are ever removed. */
  label: string;
  /** Rendered objects: ConfigMaps and Secrets that env and volumes refer to. */
  objects: Manifest[];
  /** The image a spec names → the local image that stands in for it. */
  images: Record<string, string>;
  /** Where pod volumes and logs live on this machine. */
  stateDir: string;
  /**
   * A documented difference between a stand-in image and the image the spec names, applied
   * to the probes of that image (e.g. etcd 3.4 has no /readyz); identity when none.
   */
  adjustProbe?: (image: string, probe: IProbe) => IProbe;
  log: (line: string) => void;
}

/**
 * The `podman run` flags every container of this run gets: its name, the run's label (so that
 * only this run's containers are ever removed), local images only, the ulimits, the pod
 * network and a pod's resolv.conf.
 */
export function containerFlags(node: Node, name: string): string[] {
  return [
    '--name',
    name,
    '--label',
    node.label,
    '--pull=never',
    ...ULIMITS,
    '--network',
    node.network.name,
    ...node.network.dnsFlags(),
  ];
}

export interface PodDefinition {
  name: string;
  labels: Record<string, string>;
  spec: IPodSpec;
  /** DNS names besides the pod's own hostname (StatefulSet names, headless Services). */
  aliases: string[];
  /** PersistentVolumeClaim name per volume name (a StatefulSet's claim templates). */
  claims?: Record<string, string>;
}

export interface PodEvent {
  at: number;
  what: string;
}

export interface Termination {
  exit: ExitStatus;
  /** From the delete to the container's exit, ms. */
  ms: number;
  sigkilled: boolean;
}

const MAX_BACKOFF_MS = 300_000;

/** Kubernetes quantities: 256Mi → bytes, 500m → 0.5 cores. */
export function quantity(text: string | number): number {
  if (typeof text === 'number') return text;
  const match = /^([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(text);
  if (!match) throw new Error(`not a Kubernetes quantity: ${text}`);
  const factors: Record<string, number> = {
    m: 1e-3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
  };
  return Number(match[1]) * (match[2] ? factors[match[2]]! : 1);
}

export class ContainerPod extends EventEmitter {
  readonly uid = crypto.randomUUID();
  readonly ip: string;
  readonly createdAt = Date.now();
  readonly events: PodEvent[] = [];
  readonly logFile: string;
  /** The first time the pod turned ready (for install timings). */
  firstReadyAt: number | undefined;
  /** The last transition to ready: a ReplicaSet scales down the most recently ready first. */
  readyAt: number | undefined;
  /**
   * Why no container could be created (the kubelet's CreateContainerConfigError: a
   * runAsNonRoot it cannot verify, a missing image or object); the pod then never runs.
   */
  startError: Error | undefined;
  /** How the last container ended, once one has. */
  lastExit: ExitStatus | undefined;
  restarts = 0;
  private ready = false;
  /** What the last failed probe got (status and body, or the error): said when not ready. */
  private lastProbeFailure: string | undefined;
  private terminating = false;
  private generation = 0;
  /** The current container is being stopped: its probes no longer count. */
  private terminatingContainer = false;
  private containerName = '';
  private running: Promise<ExitStatus> | undefined;
  private nodeDown: { promise: Promise<void>; resolve: () => void } | undefined;
  private readonly container: IContainer;
  private readonly abandoned = new AbortController();
  private readonly log: WriteStream;
  private readonly done: Promise<void>;
  private output = '';

  constructor(
    private readonly node: Node,
    readonly definition: PodDefinition,
  ) {
    super();
    const containers = definition.spec.containers;
    if (containers.length !== 1 || definition.spec.initContainers?.length) {
      throw new Error(`pod ${definition.name}: the container kubelet runs one container per pod`);
    }
    this.container = containers[0]!;
    if (this.container.lifecycle?.postStart || definition.spec.hostNetwork) {
      throw new Error(`pod ${definition.name}: postStart hooks and hostNetwork are not modelled`);
    }
    this.ip = node.network.allocate();
    this.logFile = path.join(node.stateDir, 'logs', `${definition.name}.log`);
    this.log = createWriteStream(this.logFile, { flags: 'a' });
    this.done = this.lifecycle();
  }

  get name(): string {
    return this.definition.name;
  }

  get labels(): Record<string, string> {
    return this.definition.labels;
  }

  /** Ready, and not being deleted: what decides whether a Service sends to this pod. */
  get serving(): boolean {
    return this.ready && !this.terminating;
  }

  get isTerminating(): boolean {
    return this.terminating;
  }

  /** The name of the current container, for `podman exec` and the like. */
  get currentContainer(): string {
    return this.containerName;
  }

  /** The container's port number for a port name or number of the spec. */
  port(nameOrNumber: string | number): number {
    if (typeof nameOrNumber === 'number') return nameOrNumber;
    const port = this.container.ports?.find((p) => p.name === nameOrNumber)?.containerPort;
    if (port === undefined) throw new Error(`pod ${this.name} has no port named ${nameOrNumber}`);
    return port;
  }

  recentOutput(): string {
    return this.output;
  }

  private event(what: string): void {
    this.events.push({ at: Date.now(), what });
    this.node.log(`${this.name}: ${what}`);
  }

  /** `why`: what the readiness probe that failed last got, for the cluster log. */
  private setReady(ready: boolean, why?: string): void {
    if (ready === this.ready) return;
    this.ready = ready;
    if (ready) {
      this.readyAt = Date.now();
      this.firstReadyAt ??= this.readyAt;
    }
    this.event(ready ? 'ready' : why === undefined ? 'not ready' : `not ready (${why})`);
    this.emit('change');
  }

  /** Runs the container, restarting it per restartPolicy, until the pod is deleted. */
  private async lifecycle(): Promise<void> {
    const policy = this.definition.spec.restartPolicy ?? 'Always';
    let backoffMs = 0;
    for (;;) {
      if (this.nodeDown) await this.nodeDown.promise;
      if (this.terminating) return;
      const startedAt = Date.now();
      let exit: ExitStatus;
      try {
        if (this.restarts === 0) await this.prepareVolumes();
        exit = await this.runOnce();
      } catch (error) {
        this.startError = error as Error;
        this.event(`CreateContainerConfigError: ${this.startError.message}`);
        this.emit('change');
        return;
      }
      this.lastExit = exit;
      this.setReady(false);
      this.event(`container exited: ${describeExit(exit)}`);
      this.emit('exit', exit);
      if (this.terminating) return;
      const failed = exit.code !== 0;
      if (policy === 'Never' || (policy === 'OnFailure' && !failed)) {
        this.event(failed ? 'Failed' : 'Succeeded');
        return;
      }
      if (Date.now() - startedAt > 2 * MAX_BACKOFF_MS) backoffMs = 0;
      if (backoffMs > 0) {
        this.event(`back-off ${backoffMs / 1000} s restarting failed container`);
        await delay(backoffMs, undefined, { signal: this.abandoned.signal }).catch(() => undefined);
        if (this.terminating) return;
      }
      backoffMs = Math.min(MAX_BACKOFF_MS, backoffMs === 0 ? 10_000 : backoffMs * 2);
      this.restarts++;
    }
  }

  /** Resolves once the pod's last container has exited and will not be restarted. */
  finished(): Promise<void> {
    return this.done;
  }

  private async runOnce(): Promise<ExitStatus> {
    const generation = ++this.generation;
    const args = await this.runArgs();
    // Deleted while the container was being prepared: it is never started.
    if (this.terminating) return { code: null, signal: null };
    this.event(`starting container ${this.containerName} from ${args.image}`);
    const { exited } = podmanStream(['run', ...args.flags, args.image, ...args.argv], (line) => {
      this.log.write(`${line}\n`);
      this.output = (this.output + line + '\n').slice(-20_000);
    });
    this.running = exited;
    this.startProbes(generation);
    const exit = await exited;
    // Probes belong to a running container: they stop with it.
    this.generation++;
    await podman(['rm', '--force', this.containerName], { allowFailure: true });
    return exit;
  }

  /** The `podman run` flags, image and argv of the next container. */
  private async runArgs(): Promise<{ flags: string[]; image: string; argv: string[] }> {
    const spec = this.definition.spec;
    const container = this.container;
    const image = this.node.images[container.image ?? ''];
    if (image === undefined) {
      throw new Error(`pod ${this.name}: no local image stands in for ${container.image}`);
    }
    this.containerName = `${this.node.runId}-${this.name}-${this.restarts}`;
    const pod: SimulatedPod = {
      name: this.name,
      namespace: this.node.network.namespace,
      uid: this.uid,
      ip: this.ip,
      nodeName: 'rehearsal-node',
      labels: this.labels,
      hostIp: this.node.network.gateway,
    };
    // The runtime puts the image's ENV under the spec's: only the spec's are passed here.
    const env = containerEnvironment(
      container,
      pod,
      { env: {}, entrypoint: [], cmd: [], workdir: '/' },
      this.node.objects,
    );
    const flags = [
      ...containerFlags(this.node, this.containerName),
      '--ip',
      this.ip,
      '--hostname',
      spec.hostname ?? this.name,
      ...this.definition.aliases.flatMap((alias) => ['--network-alias', alias]),
      ...Object.entries(env).flatMap(([name, value]) => ['--env', `${name}=${value}`]),
      ...(await this.securityFlags(image)),
      ...this.resourceFlags(),
      ...this.volumeFlags(),
    ];
    if (container.workingDir) flags.push('--workdir', container.workingDir);
    const expandAll = (parts: string[] | undefined) => (parts ?? []).map((p) => expand(p, env));
    // command replaces the image's ENTRYPOINT (and with it its CMD); args replace the CMD.
    if (container.command) flags.push('--entrypoint', JSON.stringify(expandAll(container.command)));
    return { flags, image, argv: expandAll(container.args) };
  }

  private securityContext(): ISecurityContext & {
    fsGroup?: number;
    supplementalGroups?: number[];
  } {
    const pod = this.definition.spec.securityContext ?? {};
    return { ...pod, ...(this.container.securityContext ?? {}) };
  }

  private async securityFlags(image: string): Promise<string[]> {
    const context = this.securityContext();
    const flags: string[] = [];
    const imageUser = (
      await podman(['image', 'inspect', '--format', '{{.Config.User}}', image])
    ).stdout.trim();
    const [imageUid, imageGid] = imageUser.split(':');
    if (context.runAsNonRoot) {
      // The kubelet's own check (kuberuntime verifyRunAsNonRoot).
      if (context.runAsUser === undefined) {
        if (imageUid !== undefined && imageUid !== '' && !/^\d+$/.test(imageUid)) {
          throw new Error(
            `pod ${this.name}: container has runAsNonRoot and image has non-numeric user (${imageUid}), cannot verify user is non-root`,
          );
        }
        if (!imageUid || Number(imageUid) === 0) {
          throw new Error(
            `pod ${this.name}: container has runAsNonRoot and image will run as root`,
          );
        }
      } else if (context.runAsUser === 0) {
        throw new Error(`pod ${this.name}: container's runAsUser breaks non-root policy`);
      }
    }
    if (context.runAsUser !== undefined || context.runAsGroup !== undefined) {
      const uid = context.runAsUser ?? (imageUid || '0');
      const gid = context.runAsGroup ?? (context.runAsUser === undefined ? imageGid : undefined);
      flags.push('--user', gid === undefined ? `${uid}` : `${uid}:${gid}`);
    }
    for (const group of [
      ...(context.fsGroup !== undefined ? [context.fsGroup] : []),
      ...(context.supplementalGroups ?? []),
    ]) {
      flags.push('--group-add', String(group));
    }
    if (context.readOnlyRootFilesystem) flags.push('--read-only', '--read-only-tmpfs=false');
    if (context.privileged) throw new Error(`pod ${this.name}: privileged containers are refused`);
    for (const capability of context.capabilities?.drop ?? []) flags.push('--cap-drop', capability);
    for (const capability of context.capabilities?.add ?? []) flags.push('--cap-add', capability);
    if (context.allowPrivilegeEscalation === false) {
      flags.push('--security-opt', 'no-new-privileges');
    }
    const seccomp = context.seccompProfile?.type;
    if (seccomp === 'Unconfined') flags.push('--security-opt', 'seccomp=unconfined');
    else if (seccomp !== undefined && seccomp !== 'RuntimeDefault') {
      throw new Error(`pod ${this.name}: seccomp profile ${seccomp} is not modelled`);
    }
    return flags;
  }

  private resourceFlags(): string[] {
    const { limits = {}, requests = {} } = this.container.resources ?? {};
    const flags: string[] = [];
    if (limits.memory !== undefined) {
      const bytes = Math.round(quantity(limits.memory));
      // No swap, as on a kubelet node.
      flags.push('--memory', `${bytes}b`, '--memory-swap', `${bytes}b`);
    }
    if (limits.cpu !== undefined) flags.push('--cpus', String(quantity(limits.cpu)));
    if (requests.cpu !== undefined) {
      flags.push('--cpu-shares', String(Math.max(2, Math.round(quantity(requests.cpu) * 1024))));
    }
    return flags;
  }

  private volumeDir(volume: string): string {
    const claim = this.definition.claims?.[volume];
    return claim
      ? path.join(this.node.stateDir, 'claims', claim)
      : path.join(this.node.stateDir, 'pods', this.uid, volume);
  }

  /** Creates the pod's volumes on this machine, once per pod (they outlive its containers). */
  private async prepareVolumes(): Promise<void> {
    const fsGroup = this.securityContext().fsGroup;
    for (const volume of this.definition.spec.volumes ?? []) {
      const dir = this.volumeDir(volume.name);
      await mkdir(dir, { recursive: true });
      if (volume.emptyDir) {
        if (volume.emptyDir.medium === 'Memory') continue;
        await chmod(dir, 0o777);
      } else if (volume.configMap || volume.secret) {
        const kind = volume.configMap ? 'ConfigMap' : 'Secret';
        const ref = (volume.configMap?.name ?? volume.secret?.secretName)!;
        const object = this.node.objects.find(
          (o): o is Manifest & { data?: Record<string, string> } =>
            o.kind === kind && o.metadata.name === ref,
        );
        if (!object) throw new Error(`pod ${this.name}: ${kind} ${ref} is not among the objects`);
        const mode = volume.configMap?.defaultMode ?? volume.secret?.defaultMode ?? 0o644;
        for (const [key, value] of Object.entries(object.data ?? {})) {
          const file = path.join(dir, key);
          await writeFile(file, kind === 'Secret' ? Buffer.from(value, 'base64') : value);
          await chmod(file, mode);
          if (fsGroup !== undefined) await chown(file, 0, fsGroup);
        }
      } else if (this.definition.claims?.[volume.name] || volume.persistentVolumeClaim) {
        // A fresh claim's volume, owned by root as a provisioner leaves it.
      } else {
        throw new Error(`pod ${this.name}: volume ${volume.name} is of a kind not modelled`);
      }
      // fsGroup: the group owns writable volumes and new files inherit it (setgid).
      if (fsGroup !== undefined && !volume.configMap && !volume.secret) {
        await chown(dir, 0, fsGroup);
        await chmod(dir, volume.emptyDir ? 0o2777 : 0o2775);
      }
    }
  }

  private volumeFlags(): string[] {
    const flags: string[] = [];
    const volumes = new Map((this.definition.spec.volumes ?? []).map((v) => [v.name, v]));
    for (const mount of this.container.volumeMounts ?? []) {
      const volume = volumes.get(mount.name);
      if (!volume) throw new Error(`pod ${this.name}: mount of an undeclared volume ${mount.name}`);
      if (mount.subPath) throw new Error(`pod ${this.name}: subPath mounts are not modelled`);
      if (volume.emptyDir?.medium === 'Memory') {
        const size = volume.emptyDir.sizeLimit ? quantity(volume.emptyDir.sizeLimit) : undefined;
        flags.push('--tmpfs', `${mount.mountPath}:rw,mode=1777${size ? `,size=${size}` : ''}`);
        continue;
      }
      const readOnly = mount.readOnly || volume.configMap || volume.secret;
      flags.push(
        '--volume',
        `${this.volumeDir(mount.name)}:${mount.mountPath}${readOnly ? ':ro' : ''}`,
      );
    }
    return flags;
  }

  private startProbes(generation: number): void {
    const { startupProbe, readinessProbe, livenessProbe } = this.container;
    const live = () => generation === this.generation && !this.terminatingContainer;
    void (async () => {
      if (startupProbe && !(await this.probeLoop(startupProbe, live, 'startup'))) return;
      if (readinessProbe) void this.probeLoop(readinessProbe, live, 'readiness');
      else if (live()) this.setReady(true);
      if (livenessProbe) void this.probeLoop(livenessProbe, live, 'liveness');
    })();
  }

  /**
   * Runs one probe until the container goes. Startup: resolves true at its first success
   * (false, after restarting the container, at failureThreshold). Readiness: sets the pod's
   * readiness. Liveness: restarts the container at failureThreshold.
   */
  private async probeLoop(
    declared: IProbe,
    live: () => boolean,
    kind: 'startup' | 'readiness' | 'liveness',
  ): Promise<boolean> {
    const probe = this.node.adjustProbe?.(this.container.image ?? '', declared) ?? declared;
    const period = (probe.periodSeconds ?? 10) * 1000;
    const failureThreshold = probe.failureThreshold ?? 3;
    const successThreshold = probe.successThreshold ?? 1;
    await delay((probe.initialDelaySeconds ?? 0) * 1000);
    let successes = 0;
    let failures = 0;
    while (live()) {
      const started = Date.now();
      const ok = await this.probeOnce(probe);
      if (!live()) return false;
      if (ok) {
        successes++;
        failures = 0;
      } else {
        failures++;
        successes = 0;
      }
      if (kind === 'startup' && ok) return true;
      if (kind === 'readiness') {
        if (ok && successes >= successThreshold) this.setReady(true);
        if (!ok && failures >= failureThreshold) this.setReady(false, this.lastProbeFailure);
      }
      if (kind !== 'readiness' && failures >= failureThreshold) {
        this.event(`${kind} probe failed ${failures} times: restarting the container`);
        await this.stopContainer(this.container.lifecycle?.preStop !== undefined);
        return false;
      }
      await delay(Math.max(0, period - (Date.now() - started)));
    }
    return false;
  }

  /** One probe, as the kubelet runs it: httpGet 2xx/3xx, tcpSocket connects, exec exits 0. */
  private async probeOnce(probe: IProbe): Promise<boolean> {
    const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
    try {
      if (probe.httpGet) {
        const port = this.port(probe.httpGet.port);
        const scheme = (probe.httpGet.scheme ?? 'HTTP').toLowerCase();
        const url = `${scheme}://${probe.httpGet.host ?? this.ip}:${port}${probe.httpGet.path ?? '/'}`;
        const headers = Object.fromEntries(
          (probe.httpGet.httpHeaders ?? []).map((h) => [h.name, h.value]),
        );
        const response = await fetch(url, {
          headers,
          redirect: 'manual',
          signal: AbortSignal.timeout(timeoutMs),
        });
        const body = await response.text();
        const ok = response.status >= 200 && response.status < 400;
        if (!ok) this.lastProbeFailure = `${response.status} ${body.slice(0, 300)}`;
        return ok;
      }
      if (probe.tcpSocket) {
        const port = this.port(probe.tcpSocket.port);
        return await new Promise<boolean>((resolve) => {
          const socket = net.connect({ host: this.ip, port, timeout: timeoutMs });
          const settle = (ok: boolean) => {
            socket.destroy();
            resolve(ok);
          };
          socket.once('connect', () => settle(true));
          socket.once('error', () => settle(false));
          socket.once('timeout', () => settle(false));
        });
      }
      if (probe.exec?.command) {
        const result = await this.exec(probe.exec.command, timeoutMs);
        return result.code === 0;
      }
      throw new Error(`pod ${this.name}: a probe of a kind not modelled`);
    } catch (error) {
      if (error instanceof Error && error.message.includes('not modelled')) throw error;
      this.lastProbeFailure = error instanceof Error ? error.message : String(error);
      return false;
    }
  }

  /** Runs `argv` inside the current container (`kubectl exec`). */
  exec(argv: string[], timeoutMs = 30_000) {
    return podman(['exec', this.containerName, ...argv], { allowFailure: true, timeoutMs });
  }

  /**
   * Stops the current container the kubelet's way: preStop hook (if `withPreStop`), SIGTERM,
   * SIGKILL once the grace period is over. Resolves when the container has exited.
   */
  private async stopContainer(withPreStop: boolean): Promise<Termination> {
    const started = Date.now();
    this.terminatingContainer = true;
    const grace = (this.definition.spec.terminationGracePeriodSeconds ?? 30) * 1000;
    const hook = this.container.lifecycle?.preStop;
    if (withPreStop && hook) {
      this.event('running the preStop hook');
      if (hook.exec?.command) {
        const result = await this.exec(hook.exec.command, grace);
        if (result.code !== 0) this.event(`preStop hook failed: ${result.stderr.trim()}`);
      } else if (hook.httpGet) {
        const url = `http://${hook.httpGet.host ?? this.ip}:${this.port(hook.httpGet.port)}${hook.httpGet.path ?? '/'}`;
        await fetch(url, { signal: AbortSignal.timeout(grace) }).catch(() => undefined);
      } else if (hook.sleep) {
        await delay(hook.sleep.seconds * 1000);
      }
    }
    // The kubelet gives at least 2 s more when the hook used up the grace period.
    const remainingS = Math.max(2, Math.ceil((grace - (Date.now() - started)) / 1000));
    this.event(`SIGTERM (SIGKILL after ${remainingS} s)`);
    const exitedBefore = this.running ?? Promise.resolve<ExitStatus>({ code: null, signal: null });
    await this.untilExited(exitedBefore, ['stop', '--time', String(remainingS)], remainingS + 30);
    const exit = await exitedBefore;
    this.terminatingContainer = false;
    const ms = Date.now() - started;
    return { exit, ms, sigkilled: exit.code === 137 || exit.signal === 'SIGKILL' };
  }

  /**
   * Runs `podman <command> <container>` until the container has exited: a container that
   * `podman run` is still creating is not yet there to be stopped, so the command is repeated
   * every 200 ms until `timeoutS` has passed.
   */
  private async untilExited(exited: Promise<ExitStatus>, command: string[], timeoutS: number) {
    const name = this.containerName;
    const deadline = Date.now() + timeoutS * 1000;
    let ended = false;
    void exited.then(() => (ended = true));
    while (!ended && Date.now() < deadline) {
      const result = await podman([...command, name], {
        allowFailure: true,
        timeoutMs: timeoutS * 1000,
      });
      if (result.code === 0) break;
      await Promise.race([exited, delay(200)]);
    }
    await Promise.race([exited, delay(Math.max(0, deadline - Date.now()))]);
  }

  /**
   * `kubectl delete pod`: not ready at once, then preStop, SIGTERM, SIGKILL after the grace
   * period. Resolves when the container has exited and the pod's volumes (not its claims) are
   * gone.
   */
  async delete(): Promise<Termination> {
    this.event('deleted');
    this.terminating = true;
    this.abandoned.abort();
    this.emit('change');
    this.nodeDown?.resolve();
    const termination = await this.stopContainer(true);
    await this.finish();
    return termination;
  }

  /** The node dies: the container is SIGKILLed and nothing restarts it until nodeBack(). */
  async crashNode(): Promise<void> {
    let resolve = () => {};
    const promise = new Promise<void>((r) => (resolve = r));
    this.nodeDown = { promise, resolve };
    this.event('node crashed: container SIGKILLed');
    this.terminatingContainer = true;
    if (this.running) await this.untilExited(this.running, ['kill', '--signal', 'KILL'], 30);
    this.terminatingContainer = false;
  }

  /** The node is back: the kubelet restarts the container. */
  nodeBack(): void {
    this.event('node back');
    const down = this.nodeDown;
    this.nodeDown = undefined;
    down?.resolve();
  }

  /** The container's main process dies at once (an OOM kill, a crash): the kubelet restarts it. */
  async killContainer(): Promise<void> {
    this.event('container SIGKILLed');
    if (this.running) await this.untilExited(this.running, ['kill', '--signal', 'KILL'], 30);
  }

  /** Takes the pod off the network (its own loopback stays), or puts it back. */
  async disconnect(): Promise<void> {
    this.event('cut off the network');
    await podman(['network', 'disconnect', this.node.network.name, this.containerName]);
  }

  async reconnect(): Promise<void> {
    this.event('back on the network');
    await podman([
      'network',
      'connect',
      '--ip',
      this.ip,
      ...this.definition.aliases.flatMap((alias) => ['--alias', alias]),
      this.node.network.name,
      this.containerName,
    ]);
  }

  /** The cluster goes away: probes stop, and nothing restarts the container once it exits. */
  abandon(): void {
    this.terminating = true;
    this.generation++;
    this.abandoned.abort();
    this.nodeDown?.resolve();
  }

  /** Waits for the pod to be ready, or throws with its events and output after `timeoutMs`. */
  async waitReady(timeoutMs: number): Promise<void> {
    if (this.serving) return;
    const deadline = AbortSignal.timeout(timeoutMs);
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (this.serving) finish(resolve);
        else if (this.startError) {
          const error = new Error(`pod ${this.name} cannot start: ${this.startError.message}`);
          finish(() => reject(error));
        }
      };
      const fail = () =>
        finish(() =>
          reject(
            new Error(
              `pod ${this.name} not ready after ${timeoutMs} ms; events: ${this.events
                .map((e) => e.what)
                .join('; ')}; output: ${this.output.slice(-1500)}`,
            ),
          ),
        );
      const finish = (then: () => void) => {
        this.off('change', check);
        deadline.removeEventListener('abort', fail);
        then();
      };
      this.on('change', check);
      deadline.addEventListener('abort', fail);
      check();
    });
  }

  private async finish(): Promise<void> {
    await this.done;
    this.node.network.release(this.ip);
    await new Promise<void>((resolve) => this.log.end(resolve));
    await rm(path.join(this.node.stateDir, 'pods', this.uid), { recursive: true, force: true });
  }
}
