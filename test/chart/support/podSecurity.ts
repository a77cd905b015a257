/**
 * The "restricted" Pod Security Standard (kubernetes.io/docs/concepts/security/pod-security-standards),
 * the level that the kind overlay's namespace enforces: what a pod spec violates, as messages.
 * It covers the controls a chart can get wrong; those about fields we never set (hostPath,
 * hostPorts, sysctls, procMount, AppArmor, SELinux) are checked as "not set".
 */
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';

const ALLOWED_VOLUME_TYPES = new Set([
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'persistentVolumeClaim',
  'projected',
  'secret',
]);

export function restrictedViolations(spec: IPodSpec): string[] {
  const problems: string[] = [];
  if (spec.hostNetwork || spec.hostPID || spec.hostIPC) problems.push('uses host namespaces');
  for (const volume of spec.volumes ?? []) {
    const types = Object.keys(volume).filter((key) => key !== 'name');
    const forbidden = types.filter((type) => !ALLOWED_VOLUME_TYPES.has(type));
    if (forbidden.length > 0) problems.push(`volume ${volume.name} is ${forbidden.join(', ')}`);
  }
  if (spec.securityContext?.sysctls?.length) problems.push('sets sysctls');
  const pod = spec.securityContext ?? {};
  if (pod.runAsUser === 0) problems.push('pod runs as uid 0');
  const containers = [...(spec.initContainers ?? []), ...spec.containers];
  for (const container of containers) {
    const where = `container ${container.name}`;
    const context = container.securityContext ?? {};
    if (context.privileged) problems.push(`${where} is privileged`);
    if (context.allowPrivilegeEscalation !== false) {
      problems.push(`${where} does not set allowPrivilegeEscalation: false`);
    }
    if (!(context.capabilities?.drop ?? []).includes('ALL')) {
      problems.push(`${where} does not drop ALL capabilities`);
    }
    const added = (context.capabilities?.add ?? []).filter((c) => c !== 'NET_BIND_SERVICE');
    if (added.length > 0) problems.push(`${where} adds capabilities ${added.join(', ')}`);
    if ((context.runAsNonRoot ?? pod.runAsNonRoot) !== true) {
      problems.push(`${where} may run as root (runAsNonRoot is not true)`);
    }
    if (context.runAsUser === 0) problems.push(`${where} runs as uid 0`);
    const seccomp = (context.seccompProfile ?? pod.seccompProfile)?.type;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') {
      problems.push(`${where} has no RuntimeDefault or Localhost seccomp profile`);
    }
    if ((container.ports ?? []).some((port) => port.hostPort))
      problems.push(`${where} uses a hostPort`);
    if (context.procMount && context.procMount !== 'Default') {
      problems.push(`${where} sets procMount`);
    }
  }
  return problems;
}
