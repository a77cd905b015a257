/**
 * NetworkPolicy admission as a conforming CNI (Calico, Cilium) decides it, for ingress over
 * TCP: a pod no policy selects admits everything; a selected pod admits a connection that
 * some rule of some selecting policy allows by port (number or the container's port name)
 * and by peer (podSelector within the policy's namespace, namespaceSelector, or both).
 * matchLabels only; a policy using anything else makes the check throw rather than guess.
 */
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { INetworkPolicyPeer } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicyPeer';

type LabelSelector = NonNullable<INetworkPolicyPeer['podSelector']>;

export interface PodEnd {
  namespace: string;
  labels: Record<string, string>;
}

export interface Destination extends PodEnd {
  /** The container ports by name, for rules that name a port. */
  ports: Record<string, number>;
}

function matches(selector: LabelSelector | undefined, labels: Record<string, string>) {
  if (selector === undefined) return true;
  if (selector.matchExpressions?.length) throw new Error('matchExpressions: not evaluated here');
  return Object.entries(selector.matchLabels ?? {}).every(([key, value]) => labels[key] === value);
}

function peerAdmits(peer: INetworkPolicyPeer, policyNamespace: string, source: PodEnd): boolean {
  if (peer.ipBlock) throw new Error('ipBlock: not evaluated here');
  const namespaceLabels = { 'kubernetes.io/metadata.name': source.namespace };
  if (peer.namespaceSelector === undefined) {
    return source.namespace === policyNamespace && matches(peer.podSelector, source.labels);
  }
  return (
    matches(peer.namespaceSelector, namespaceLabels) && matches(peer.podSelector, source.labels)
  );
}

/** Whether `source` may open a TCP connection to `port` of `destination`. */
export function admits(
  policies: INetworkPolicy[],
  source: PodEnd,
  destination: Destination,
  port: number,
): boolean {
  const selecting = policies.filter(
    (policy) =>
      (policy.metadata?.namespace ?? destination.namespace) === destination.namespace &&
      matches(policy.spec!.podSelector, destination.labels) &&
      (policy.spec!.policyTypes ?? ['Ingress']).includes('Ingress'),
  );
  if (selecting.length === 0) return true;
  return selecting.some((policy) =>
    (policy.spec!.ingress ?? []).some((rule) => {
      const portAllowed =
        rule.ports === undefined ||
        rule.ports.length === 0 ||
        rule.ports.some((allowed) => {
          if ((allowed.protocol ?? 'TCP') !== 'TCP') return false;
          if (allowed.port === undefined) return true;
          const number =
            typeof allowed.port === 'number' ? allowed.port : destination.ports[allowed.port];
          return number === port;
        });
      const peerAllowed =
        rule.from === undefined ||
        rule.from.length === 0 ||
        rule.from.some((peer) =>
          peerAdmits(peer, policy.metadata?.namespace ?? destination.namespace, source),
        );
      return portAllowed && peerAllowed;
    }),
  );
}
