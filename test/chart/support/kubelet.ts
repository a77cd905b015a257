/**
 * A small kubelet for the contract test: it turns a rendered container spec into a process on
 * this machine the way the kubelet and the container runtime would — the image's ENV, then
 * envFrom, then env in order with $(VAR) expansion and the downward API; command and args
 * over the image's ENTRYPOINT and CMD; the image's WORKDIR — and it runs probes and preStop
 * hooks as declared.
 *
 * What stands in for the container: the image's /app is this checkout after `npm run build`
 * (the Dockerfile copies exactly package.json, node_modules and dist/src there), its `node` is
 * this Node.js, and each pod's network namespace is its own loopback address (127.0.0.2,
 * 127.0.0.3, ...), which the member binds through HOST. HOST is the one variable added: the
 * chart leaves it unset, so in a pod the member binds every address of its own namespace.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import {
  describeExit,
  isRunning,
  supervise,
  type ExitStatus,
} from '../../../src/demo/childProcesses.js';
import { execForm, type Stage } from './dockerfile.js';
import { REPO_ROOT, type Manifest } from './tools.js';

export interface SimulatedPod {
  name: string;
  namespace: string;
  uid: string;
  ip: string;
  nodeName: string;
  labels: Record<string, string>;
  /** The node's address (status.hostIP); loopback when the node is this machine's loopback. */
  hostIp?: string;
}

export function simulatedPod(name: string, ip: string, labels: Record<string, string>) {
  return { name, namespace: 'pools', uid: randomUUID(), ip, nodeName: 'node-1', labels };
}

/** The image as the Dockerfile's last stage defines it. */
export interface Image {
  env: Record<string, string>;
  entrypoint: string[];
  cmd: string[];
  workdir: string;
}

export function imageOf(stage: Stage): Image {
  const image: Image = { env: {}, entrypoint: [], cmd: [], workdir: '/' };
  for (const instruction of stage.instructions) {
    if (instruction.keyword === 'ENV') {
      for (const match of instruction.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) {
        image.env[match[1]!] = match[2]!.replace(/^"|"$/g, '');
      }
    } else if (instruction.keyword === 'WORKDIR') {
      image.workdir = path.posix.resolve(image.workdir, instruction.args);
    } else if (instruction.keyword === 'ENTRYPOINT' || instruction.keyword === 'CMD') {
      const argv = execForm(instruction);
      if (!argv) throw new Error(`line ${instruction.line}: only exec-form ${instruction.keyword}`);
      if (instruction.keyword === 'ENTRYPOINT') image.entrypoint = argv;
      else image.cmd = argv;
    }
  }
  return image;
}

/**
 * Kubernetes' $(VAR) expansion: a defined variable is replaced, an undefined reference stays
 * as written, `$$` is an escaped `$`.
 */
export function expand(text: string, variables: Record<string, string>): string {
  return text.replace(
    /\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g,
    (whole, name: string | undefined) => (name === undefined ? '$' : (variables[name] ?? whole)),
  );
}

function fieldValue(fieldPath: string, pod: SimulatedPod): string {
  const label = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (label?.[1] === 'labels') return pod.labels[label[2]!] ?? '';
  const fields: Record<string, string> = {
    'metadata.name': pod.name,
    'metadata.namespace': pod.namespace,
    'metadata.uid': pod.uid,
    'status.podIP': pod.ip,
    'status.podIPs': pod.ip,
    'status.hostIP': pod.hostIp ?? '127.0.0.1',
    'spec.nodeName': pod.nodeName,
  };
  const value = fields[fieldPath];
  if (value === undefined) throw new Error(`the simulated kubelet has no field ${fieldPath}`);
  return value;
}

/** The container's environment as the process sees it, image ENV included. */
export function containerEnvironment(
  container: IContainer,
  pod: SimulatedPod,
  image: Image,
  objects: Manifest[],
): Record<string, string> {
  const dataOf = (kind: 'ConfigMap' | 'Secret', name: string) => {
    const object = objects.find(
      (o): o is Manifest & { data?: Record<string, string>; stringData?: Record<string, string> } =>
        o.kind === kind && o.metadata.name === name,
    );
    if (object === undefined) return undefined;
    const data = { ...(object.data ?? {}) };
    if (kind === 'Secret') {
      for (const key of Object.keys(data)) data[key] = Buffer.from(data[key]!, 'base64').toString();
    }
    return { ...data, ...(object.stringData ?? {}) };
  };
  const missing = (what: string, optional: boolean | undefined) => {
    if (!optional)
      throw new Error(`${what} is not among the rendered objects: the pod would not start`);
  };

  // What $(VAR) may refer to: envFrom, then the env entries defined so far.
  const defined: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    const ref = source.configMapRef ?? source.secretRef;
    const kind = source.configMapRef ? 'ConfigMap' : 'Secret';
    const data = ref?.name ? dataOf(kind, ref.name) : undefined;
    if (data === undefined) missing(`${kind} ${ref?.name}`, ref?.optional);
    for (const [key, value] of Object.entries(data ?? {}))
      defined[`${source.prefix ?? ''}${key}`] = value;
  }
  for (const variable of container.env ?? []) {
    const from = variable.valueFrom;
    if (from === undefined) {
      defined[variable.name] = expand(variable.value ?? '', defined);
    } else if (from.fieldRef) {
      defined[variable.name] = fieldValue(from.fieldRef.fieldPath, pod);
    } else if (from.configMapKeyRef || from.secretKeyRef) {
      const ref = (from.configMapKeyRef ?? from.secretKeyRef)!;
      const kind = from.configMapKeyRef ? 'ConfigMap' : 'Secret';
      const value = dataOf(kind, ref.name ?? '')?.[ref.key];
      if (value === undefined) missing(`${kind} ${ref.name} key ${ref.key}`, ref.optional);
      else defined[variable.name] = value;
    } else {
      throw new Error(
        `the simulated kubelet cannot fill ${variable.name}: ${JSON.stringify(from)}`,
      );
    }
  }
  return { ...image.env, ...defined };
}

/** argv as the runtime starts it: command/args over the image's ENTRYPOINT/CMD, expanded. */
export function containerArgv(container: IContainer, image: Image, env: Record<string, string>) {
  const argv = container.command
    ? [...container.command, ...(container.args ?? [])]
    : [...image.entrypoint, ...(container.args ?? image.cmd)];
  return argv.map((part) => expand(part, env));
}

/** The image's files are this checkout: /app/dist/src/cli.js is ./dist/src/cli.js. */
function hostPath(image: Image, containerDir: string): string {
  const relative = path.posix.relative(image.workdir, containerDir);
  if (relative.startsWith('..')) throw new Error(`${containerDir} is outside the image's app`);
  return path.join(REPO_ROOT, relative);
}

/** One running container: the process, its output, and how it ended. */
export class SimulatedContainer {
  readonly exited: Promise<ExitStatus>;
  private output = '';

  private constructor(
    readonly pod: SimulatedPod,
    readonly container: IContainer,
    readonly env: Record<string, string>,
    private readonly child: ChildProcess,
  ) {
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding('utf8').on('data', (text: string) => {
        this.output = (this.output + text).slice(-20_000);
      });
    }
    this.exited = supervise(child);
  }

  /**
   * Starts the container of `pod`. `extraEnv` is what the pod's own network namespace would
   * give: HOST, the pod's address.
   */
  static start(
    pod: SimulatedPod,
    container: IContainer,
    image: Image,
    objects: Manifest[],
    extraEnv: Record<string, string>,
  ): SimulatedContainer {
    const env = { ...containerEnvironment(container, pod, image, objects), ...extraEnv };
    const [executable, ...args] = containerArgv(container, image, env);
    if (executable !== 'node') throw new Error(`the image runs node, not ${executable}`);
    const child = spawn(process.execPath, args, {
      cwd: hostPath(image, container.workingDir ?? image.workdir),
      env: { HOSTNAME: pod.name, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new SimulatedContainer(pod, container, env, child);
  }

  get running(): boolean {
    return isRunning(this.child);
  }

  recentOutput(): string {
    return this.output;
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  async describeExit(): Promise<string> {
    return describeExit(await this.exited);
  }

  /** The URL of an httpGet handler (probe or hook) on this pod, its port resolved by name. */
  handlerUrl(httpGet: NonNullable<IProbe['httpGet']>): string {
    const port =
      typeof httpGet.port === 'number'
        ? httpGet.port
        : this.container.ports?.find((p) => p.name === httpGet.port)?.containerPort;
    if (port === undefined) throw new Error(`no container port named ${httpGet.port}`);
    const scheme = (httpGet.scheme ?? 'HTTP').toLowerCase();
    return `${scheme}://${httpGet.host ?? this.pod.ip}:${port}${httpGet.path ?? '/'}`;
  }

  /** One probe, as the kubelet runs it: success is a 2xx or 3xx within timeoutSeconds. */
  async probe(probe: IProbe): Promise<boolean> {
    if (!probe.httpGet) throw new Error(`the simulated kubelet runs httpGet probes only`);
    const headers = Object.fromEntries(
      (probe.httpGet.httpHeaders ?? []).map((h) => [h.name, h.value]),
    );
    try {
      const response = await fetch(this.handlerUrl(probe.httpGet), {
        headers,
        redirect: 'manual',
        signal: AbortSignal.timeout((probe.timeoutSeconds ?? 1) * 1000),
      });
      await response.arrayBuffer();
      return response.status >= 200 && response.status < 400;
    } catch {
      return false;
    }
  }

  /**
   * Runs the preStop hook as declared (an exec hook runs its command here, on this machine,
   * as it would in the container).
   */
  async preStop(): Promise<void> {
    const hook = this.container.lifecycle?.preStop;
    if (hook === undefined) return;
    if (hook.exec?.command) {
      const [file, ...args] = hook.exec.command.map((part) => expand(part, this.env));
      const child = spawn(file!, args, { stdio: 'ignore' });
      const status = await supervise(child);
      if (status.code !== 0)
        throw new Error(`preStop ${file} ${args.join(' ')}: ${describeExit(status)}`);
    } else if (hook.httpGet) {
      await fetch(this.handlerUrl(hook.httpGet)).catch(() => undefined);
    } else if (hook.sleep) {
      await delay(hook.sleep.seconds * 1000);
    }
  }
}

/** Whether `ip:port` can be bound right now (nothing else listens there, nor on 0.0.0.0). */
export function canBind(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: ip, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}
