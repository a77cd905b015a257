/**
 * The chart's values matrix: every case is linted and rendered by Helm 3 and Helm 4, and
 * every object it renders is validated against the Kubernetes schemas.
 */
import type { Values } from './tools.js';

export interface ValuesCase {
  name: string;
  values: Values;
  /** What the rendered Deployment must say, for the checks that depend on the case. */
  expect: {
    replicas: number;
    /** Bundled etcd members; 0 with an external etcd. */
    etcdMembers: number;
    etcdEndpoints: string[];
    monitoring: boolean;
  };
}

const bundledEtcd = (members: number) =>
  Array.from(
    { length: members },
    (_, i) => `http://spl-service-pool-leader-etcd-${i}.spl-service-pool-leader-etcd:2379`,
  );

const EXTERNAL_ENDPOINTS = ['https://etcd-0.etcd.example:2379', 'https://etcd-1.etcd.example:2379'];

const DIGEST = `sha256:${'0123456789abcdef'.repeat(4)}`;
const ON_SSD_NODES = {
  nodeAffinity: {
    requiredDuringSchedulingIgnoredDuringExecution: {
      nodeSelectorTerms: [{ matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }] }],
    },
  },
};
const TOLERATE_DEDICATED = [
  { key: 'dedicated', operator: 'Equal', value: 'pools', effect: 'NoSchedule' },
];

/** Every placement value of the members and of etcd set, and both images pinned. */
export const PLACED: Values = {
  image: { digest: DIGEST },
  affinity: ON_SSD_NODES,
  priorityClassName: 'pool-members',
  tolerations: TOLERATE_DEDICATED,
  etcd: {
    image: { digest: DIGEST },
    affinity: ON_SSD_NODES,
    nodeSelector: { 'kubernetes.io/os': 'linux' },
    tolerations: TOLERATE_DEDICATED,
    priorityClassName: 'pool-etcd',
    extraEnv: [{ name: 'GOMAXPROCS', value: '2' }],
  },
};

export const VALUES_MATRIX: readonly ValuesCase[] = [
  {
    name: 'defaults',
    values: {},
    expect: { replicas: 3, etcdMembers: 3, etcdEndpoints: bundledEtcd(3), monitoring: false },
  },
  {
    name: 'external etcd with TLS, client certificate, auth and pool tokens',
    values: {
      etcd: {
        enabled: false,
        endpoints: EXTERNAL_ENDPOINTS,
        tls: { enabled: true, secretName: 'etcd-client-tls' },
        auth: { enabled: true, secretName: 'etcd-pool-user' },
      },
      tokens: { existingSecret: 'pool-tokens' },
    },
    expect: { replicas: 3, etcdMembers: 0, etcdEndpoints: EXTERNAL_ENDPOINTS, monitoring: false },
  },
  {
    name: 'metrics off',
    values: {
      metrics: {
        enabled: false,
        serviceMonitor: { enabled: false },
        prometheusRule: { enabled: false },
      },
      grafana: { dashboard: { enabled: false } },
    },
    expect: { replicas: 3, etcdMembers: 3, etcdEndpoints: bundledEtcd(3), monitoring: false },
  },
  {
    name: 'ServiceMonitor, PrometheusRule and dashboard on, with extra labels',
    values: {
      metrics: {
        serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus-stack' } },
        prometheusRule: { enabled: true, labels: { release: 'kube-prometheus-stack' } },
      },
      grafana: { dashboard: { enabled: true } },
    },
    expect: { replicas: 3, etcdMembers: 3, etcdEndpoints: bundledEtcd(3), monitoring: true },
  },
  {
    name: '1 member on a 1-member etcd',
    values: { replicaCount: 1, etcd: { replicas: 1 } },
    expect: { replicas: 1, etcdMembers: 1, etcdEndpoints: bundledEtcd(1), monitoring: false },
  },
  {
    name: '5 members on a 5-member etcd, no persistence, hard anti-affinity',
    values: {
      replicaCount: 5,
      etcd: { replicas: 5, persistence: { enabled: false }, antiAffinity: 'hard' },
      config: { SHUTDOWN_TIMEOUT_MS: 25_500 },
    },
    expect: { replicas: 5, etcdMembers: 5, etcdEndpoints: bundledEtcd(5), monitoring: false },
  },
  {
    name: 'placed and pinned: affinity, priority classes, tolerations, image digests, etcd env',
    values: PLACED,
    expect: { replicas: 3, etcdMembers: 3, etcdEndpoints: bundledEtcd(3), monitoring: false },
  },
];
