/**
 * The Helm chart, with the real Helm 3 and Helm 4 binaries: `helm lint --strict` and `helm
 * template` over the values matrix, what every rendering must hold (a pool that Kubernetes
 * runs as designed), and values.schema.json refusing what it should.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPod } from 'kubernetes-models/v1/Pod';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { VARIABLES } from '../../src/config/variables.js';
import { CHART_MANAGED_VARIABLES } from '../../scripts/chart-config-schema.js';
import { restrictedViolations } from './support/podSecurity.js';
import {
  CHART_DIR,
  REPO_ROOT,
  TOOLSETS,
  ensureTools,
  find,
  lintChart,
  parseManifests,
  renderChart,
  run,
  templateChart,
  type Manifest,
  type Values,
} from './support/tools.js';
import { VALUES_MATRIX, type ValuesCase } from './support/valuesMatrix.js';

const STANDARD_LABELS = [
  'helm.sh/chart',
  'app.kubernetes.io/name',
  'app.kubernetes.io/instance',
  'app.kubernetes.io/version',
  'app.kubernetes.io/part-of',
  'app.kubernetes.io/managed-by',
];

interface Rejection {
  what: string;
  values: Values;
  /** The message must name this key. */
  names: RegExp;
}

const HTTPS_ENDPOINT = ['https://etcd-0.etcd.example:2379'];
const REJECTIONS: Rejection[] = [
  { what: 'a misspelt top-level key', values: { replicas: 3 }, names: /replicas/ },
  {
    what: 'a misspelt nested key',
    values: { etcd: { persistance: { enabled: false } } },
    names: /etcd.*persistance|persistance.*etcd/,
  },
  { what: 'a string for a number', values: { replicaCount: 'three' }, names: /replicaCount/ },
  {
    what: 'a variable the member does not read',
    values: { config: { LEASE_TTL: 5 } },
    names: /LEASE_TTL\b/,
  },
  {
    what: 'a variable the chart sets itself',
    values: { config: { ETCD_ENDPOINTS: 'http://elsewhere:2379' } },
    names: /ETCD_ENDPOINTS/,
  },
  {
    what: 'a LOG_FORMAT the member does not know',
    values: { config: { LOG_FORMAT: 'text' } },
    names: /LOG_FORMAT/,
  },
  {
    what: 'a SHUTDOWN_TIMEOUT_MS that is not a number of milliseconds',
    values: { config: { SHUTDOWN_TIMEOUT_MS: '10s' } },
    names: /SHUTDOWN_TIMEOUT_MS/,
  },
  {
    what: 'an external etcd without endpoints',
    values: { etcd: { enabled: false } },
    names: /endpoints/,
  },
  {
    what: 'endpoints while the bundled etcd is on',
    values: { etcd: { endpoints: HTTPS_ENDPOINT } },
    names: /enabled/,
  },
  {
    what: 'TLS to plain-HTTP endpoints',
    values: {
      etcd: {
        enabled: false,
        endpoints: ['http://etcd:2379'],
        tls: { enabled: true, secretName: 'tls' },
      },
    },
    names: /endpoints/,
  },
  {
    what: 'TLS without a Secret',
    values: { etcd: { enabled: false, endpoints: HTTPS_ENDPOINT, tls: { enabled: true } } },
    names: /secretName/,
  },
  { what: 'an even etcd size', values: { etcd: { replicas: 2 } }, names: /replicas/ },
];

const PACKAGE_VERSION = (
  JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }
).version;

describe('the Helm chart helm/service-pool-leader', function () {
  this.timeout(60_000);
  before(ensureTools);

  for (const tools of TOOLSETS) {
    describe(`with ${tools.name}`, () => {
      it(`runs helm ${tools.helmVersion} and kubectl ${tools.kubectlVersion}`, async () => {
        expect((await run(tools.helm, ['version', '--short'])).stdout).to.match(
          new RegExp(`^${tools.helmVersion.replace(/\./g, '\\.')}\\+`),
        );
        expect((await run(tools.kubectl, ['version', '--client'])).stdout).to.include(
          `Client Version: ${tools.kubectlVersion}`,
        );
      });

      for (const valuesCase of VALUES_MATRIX) {
        it(`${valuesCase.name}: lint --strict passes, template renders a pool Kubernetes runs as designed`, async () => {
          const [lint, manifests] = await Promise.all([
            lintChart(tools, valuesCase.values),
            renderChart(tools, valuesCase.values),
          ]);
          expect(lint.code, lint.stdout + lint.stderr).to.equal(0);
          expect(lint.stdout).not.to.match(/\[(WARNING|ERROR)\]/);
          checkPool(manifests, valuesCase);
        });
      }

      for (const rejection of REJECTIONS) {
        it(`the schema rejects ${rejection.what}, naming the key, in lint and template`, async () => {
          const [lint, template] = await Promise.all([
            lintChart(tools, rejection.values),
            templateChart(tools, rejection.values),
          ]);
          expect(lint.code).not.to.equal(0);
          expect(template.code).not.to.equal(0);
          for (const output of [lint.stdout + lint.stderr, template.stderr]) {
            expect(output).to.match(/schema/);
            expect(output).to.match(rejection.names);
          }
        });
      }

      it('the values `make grafana` sets pass the schema and label the ServiceMonitor for kube-prometheus-stack', async () => {
        const manifests = parseManifests(
          (await templateOk(tools, await grafanaScriptHelmArgs())).stdout,
        );
        for (const monitor of manifests.filter((m) => m.kind === 'ServiceMonitor'))
          expect(monitor.metadata.labels?.release).to.equal('kube-prometheus-stack');
        find(manifests, 'PrometheusRule');
        // The NetworkPolicy admits kube-prometheus-stack's Prometheus (test/chart/scraping.test.ts).
        const policy = find<INetworkPolicy>(manifests, 'NetworkPolicy', 'spl-service-pool-leader');
        expect(JSON.stringify(policy.spec?.ingress)).to.include(
          '[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}},"podSelector":{"matchLabels":{"app.kubernetes.io/name":"prometheus"}}}]',
        );
      });
    });
  }

  it(`Chart.yaml's appVersion is package.json's version (${PACKAGE_VERSION}), the default image tag`, async () => {
    const chart = readFileSync(path.join(CHART_DIR, 'Chart.yaml'), 'utf8');
    expect(chart).to.match(new RegExp(`^appVersion: '${PACKAGE_VERSION}'$`, 'm'));
    const deployment = find<IDeployment>(await renderChart(TOOLSETS[0]!, {}), 'Deployment');
    expect(deployment.spec?.template.spec?.containers[0]?.image).to.equal(
      `service-pool-leader:${PACKAGE_VERSION}`,
    );
  });

  it("Chart.yaml names the project's home, sources, maintainers and an icon that exists here; lint has nothing to add", async () => {
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
      homepage: string;
      repository: { url: string };
    };
    const chart = parseManifests(
      readFileSync(path.join(CHART_DIR, 'Chart.yaml'), 'utf8'),
    )[0] as unknown as {
      home: string;
      sources: string[];
      icon: string;
      maintainers: { name: string; url?: string }[];
    };
    expect(chart.home).to.equal(pkg.homepage);
    expect(chart.sources).to.include(
      pkg.repository.url.replace(/^git\+/, '').replace(/\.git$/, ''),
    );
    expect(chart.maintainers.length).to.be.greaterThan(0);
    const raw = `${pkg.homepage.replace('https://github.com/', 'https://raw.githubusercontent.com/')}/main/`;
    expect(chart.icon.startsWith(raw), chart.icon).to.equal(true);
    const icon = readFileSync(path.join(REPO_ROOT, chart.icon.slice(raw.length)), 'utf8');
    expect(icon).to.match(/^<svg [^>]*viewBox="0 0 \d+ \d+"/);
    for (const tools of TOOLSETS) {
      const lint = await lintChart(tools, {});
      expect(lint.code, lint.stderr).to.equal(0);
      expect(lint.stdout + lint.stderr, tools.name).to.not.match(/\[(INFO|WARNING)\]/);
    }
  });

  it("etcd's backend quota is 80 % of its volume (at most 8 GiB), so its NOSPACE alarm comes before a full disk", async () => {
    const tools = TOOLSETS.at(-1)!;
    const quota = async (persistence: Values) => {
      const etcd = find<IStatefulSet>(
        await renderChart(tools, { etcd: { persistence } }),
        'StatefulSet',
      );
      const args = etcd.spec!.template.spec!.containers[0]!.args!;
      const flag = args.find((arg) => arg.startsWith('--quota-backend-bytes='));
      return flag === undefined ? undefined : Number(flag.split('=')[1]);
    };
    const GiB = 2 ** 30;
    expect(await quota({}), 'the default 1Gi volume').to.equal(Math.floor(0.8 * GiB));
    expect(await quota({ size: '1.5Gi' })).to.equal(Math.floor(0.8 * 1.5 * GiB));
    expect(await quota({ size: '500M' })).to.equal(400_000_000);
    expect(await quota({ size: '20Gi' }), "etcd's recommended ceiling").to.equal(8 * GiB);
    expect(await quota({ enabled: false }), 'no volume, no size: etcd decides').to.equal(undefined);
  });

  it('no pod of the chart gets Service environment variables (etcd reads every ETCD_* variable)', async () => {
    const manifests = await renderChart(TOOLSETS.at(-1)!, {});
    const specs = [
      find<IDeployment>(manifests, 'Deployment').spec!.template.spec!,
      find<IStatefulSet>(manifests, 'StatefulSet').spec!.template.spec!,
      ...manifests.filter((m) => m.kind === 'Pod').map((pod) => (pod as IPod).spec!),
    ];
    expect(specs.map((spec) => spec.enableServiceLinks)).to.deep.equal(specs.map(() => false));
  });

  it("a chart or app upgrade never rolls etcd: its pods carry etcd's version and no chart version", async () => {
    // The same chart under a new chart version and appVersion, rendered beside the original.
    const bumped = mkdtempSync(path.join(os.tmpdir(), 'spl-chart-bump-'));
    try {
      cpSync(CHART_DIR, bumped, { recursive: true });
      const chartFile = path.join(bumped, 'Chart.yaml');
      writeFileSync(
        chartFile,
        readFileSync(chartFile, 'utf8')
          .replace(/^version: .*$/m, 'version: 9.9.9')
          .replace(/^appVersion: .*$/m, "appVersion: '9.9.9'"),
      );
      const tools = TOOLSETS.at(-1)!;
      const rendered = await run(tools.helm, ['template', 'spl', bumped, '--namespace', 'pools']);
      expect(rendered.code, rendered.stderr).to.equal(0);
      const before = find<IStatefulSet>(await renderChart(tools, {}), 'StatefulSet');
      const after = find<IStatefulSet>(parseManifests(rendered.stdout), 'StatefulSet');
      expect(after.spec!.template, 'the etcd pod template').to.deep.equal(before.spec!.template);
      const labels = before.spec!.template.metadata!.labels!;
      expect(labels).not.to.have.property('helm.sh/chart');
      expect(labels['app.kubernetes.io/version']).to.equal(
        before.spec!.template.spec!.containers[0]!.image!.split(':').at(-1),
      );
    } finally {
      rmSync(bumped, { recursive: true, force: true });
    }
  });

  it("`config` offers exactly the member's variables that the chart does not set itself", () => {
    const schema = JSON.parse(readFileSync(path.join(CHART_DIR, 'values.schema.json'), 'utf8')) as {
      properties: { config: { properties: Record<string, unknown> } };
    };
    const offered = Object.keys(schema.properties.config.properties);
    const expected = VARIABLES.map((v) => v.name).filter(
      (name) => !(name in CHART_MANAGED_VARIABLES),
    );
    expect([...offered].sort()).to.deep.equal([...expected].sort());
    for (const name of Object.keys(CHART_MANAGED_VARIABLES)) {
      expect(
        VARIABLES.map((v) => v.name),
        `${name} is no variable of the member`,
      ).to.include(name);
    }
  });
});

async function templateOk(tools: (typeof TOOLSETS)[number], args: string[]) {
  const result = await run(tools.helm, [
    'template',
    'spl',
    CHART_DIR,
    '--namespace',
    'pools',
    ...args,
  ]);
  expect(result.code, result.stderr).to.equal(0);
  return result;
}

/**
 * The value flags of the `helm upgrade` that scripts/grafana.sh prints (and runs with
 * INSTALL=1), word-split by bash itself.
 */
async function grafanaScriptHelmArgs(): Promise<string[]> {
  const printed = await run('bash', [path.join(REPO_ROOT, 'scripts', 'grafana.sh')], {
    env: { ...process.env, INSTALL: '0', NAMESPACE: 'pools', RELEASE: 'spl' },
  });
  // `helm` from PATH, else the path `make tools` extracts to.
  const line = printed.stdout.split('\n').find((l) => /^\s+\S*helm upgrade spl /.test(l));
  if (!line)
    throw new Error(`no "helm upgrade spl" in scripts/grafana.sh's output:\n${printed.stdout}`);
  const words = await run('bash', ['-c', `printf '%s\\0' ${line}`]);
  const argv = words.stdout.split('\0').slice(0, -1);
  const flags: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--set' || argv[i] === '--set-json') flags.push(argv[i]!, argv[++i]!);
  }
  expect(flags).to.have.length.greaterThan(0);
  return flags;
}

/** What every rendering must hold, whatever the values. */
function checkPool(manifests: Manifest[], valuesCase: ValuesCase): void {
  const { expect: expected } = valuesCase;
  for (const manifest of manifests) {
    const labels = manifest.metadata.labels ?? {};
    for (const label of STANDARD_LABELS) {
      expect(labels, `${manifest.kind}/${manifest.metadata.name} label ${label}`).to.have.property(
        label,
      );
    }
  }

  const deployment = find<IDeployment>(manifests, 'Deployment');
  const podSpec = deployment.spec!.template.spec!;
  const podLabels = deployment.spec!.template.metadata!.labels!;
  expect(deployment.spec!.replicas).to.equal(expected.replicas);
  expect(restrictedViolations(podSpec)).to.deep.equal([]);
  expect(deployment.spec!.selector.matchLabels).to.satisfy(isSubsetOf(podLabels));

  const container = podSpec.containers[0]!;
  const env = new Map((container.env ?? []).map((e, i) => [e.name, { ...e, index: i }]));
  const downward = {
    POD_NAME: 'metadata.name',
    POD_NAMESPACE: 'metadata.namespace',
    POD_UID: 'metadata.uid',
    POD_IP: 'status.podIP',
  };
  for (const [name, field] of Object.entries(downward)) {
    expect(env.get(name)?.valueFrom?.fieldRef?.fieldPath, name).to.equal(field);
  }
  const port = container.ports!.find((p) => p.name === 'http')!.containerPort;
  expect(env.get('PORT')?.value).to.equal(String(port));
  expect(env.get('ADVERTISE_URL')?.value).to.equal(`http://$(POD_IP):${port}`);
  // The kubelet expands $(POD_IP) only from variables defined earlier in the list.
  expect(env.get('POD_IP')!.index).to.be.below(env.get('ADVERTISE_URL')!.index);
  expect(env.get('ETCD_ENDPOINTS')?.value?.split(',')).to.deep.equal(expected.etcdEndpoints);
  expect(env.has('HOST'), 'HOST stays unset: the member binds every address of its pod').to.equal(
    false,
  );

  expect(container.readinessProbe?.httpGet).to.deep.include({ path: '/readyz', port: 'http' });
  expect(container.livenessProbe?.httpGet).to.deep.include({ path: '/healthz', port: 'http' });
  expect(container.securityContext?.readOnlyRootFilesystem).to.equal(true);
  const tmp = container.volumeMounts?.find((m) => m.mountPath === '/tmp');
  expect(podSpec.volumes?.find((v) => v.name === tmp?.name)?.emptyDir).to.not.equal(undefined);
  expect(container.resources?.requests).to.have.keys('cpu', 'memory');
  expect(container.resources?.limits).to.have.property('memory');
  expect(podSpec.automountServiceAccountToken).to.equal(false);

  for (const spread of podSpec.topologySpreadConstraints ?? []) {
    expect(spread.whenUnsatisfiable, 'a single-node cluster still schedules').to.equal(
      'ScheduleAnyway',
    );
    expect(spread.labelSelector?.matchLabels).to.satisfy(isSubsetOf(podLabels));
  }
  expect(podSpec.topologySpreadConstraints).to.have.length(1);

  // The kubelet waits for the preStop hook, then SIGTERM; the member then needs up to
  // SHUTDOWN_TIMEOUT_MS. The grace period must cover both, or draining ends in SIGKILL.
  const config = find<IConfigMap>(manifests, 'ConfigMap', deployment.metadata!.name);
  const fromConfigMap = container.envFrom?.map((source) => source.configMapRef?.name);
  expect(fromConfigMap).to.deep.equal([config.metadata!.name]);
  const shutdownMs = Number(config.data!.SHUTDOWN_TIMEOUT_MS ?? 10_000);
  const preStop = container.lifecycle?.preStop?.exec?.command ?? [];
  expect(preStop[0]).to.equal('sleep');
  const preStopSeconds = Number(preStop[1]);
  expect(preStopSeconds).to.be.greaterThan(0);
  expect(podSpec.terminationGracePeriodSeconds).to.equal(
    preStopSeconds + Math.ceil(shutdownMs / 1000) + 5,
  );

  const service = find<IService>(manifests, 'Service', deployment.metadata!.name);
  expect(service.spec!.selector).to.satisfy(isSubsetOf(podLabels));
  expect(service.spec!.ports![0]!.targetPort).to.equal('http');
  const budget = find<IPodDisruptionBudget>(
    manifests,
    'PodDisruptionBudget',
    deployment.metadata!.name,
  );
  expect(budget.spec!.selector!.matchLabels).to.satisfy(isSubsetOf(podLabels));
  expect(budget.spec!.maxUnavailable).to.equal(1);
  const policy = find<INetworkPolicy>(manifests, 'NetworkPolicy', deployment.metadata!.name);
  expect(policy.spec!.podSelector?.matchLabels).to.satisfy(isSubsetOf(podLabels));

  const statefulSets = manifests.filter(
    (m) => m.kind === 'StatefulSet',
  ) as unknown as IStatefulSet[];
  if (expected.etcdMembers === 0) {
    expect(statefulSets).to.deep.equal([]);
  } else {
    checkEtcd(manifests, expected.etcdMembers, podLabels);
  }

  const tls = valuesCase.values.etcd as { tls?: { enabled?: boolean; secretName?: string } };
  if (tls?.tls?.enabled) {
    for (const name of ['ETCD_CA_FILE', 'ETCD_CERT_FILE', 'ETCD_KEY_FILE']) {
      const file = env.get(name)?.value ?? '';
      const mount = container.volumeMounts!.find((m) => file.startsWith(`${m.mountPath}/`));
      const volume = podSpec.volumes!.find((v) => v.name === mount?.name);
      expect(volume?.secret?.secretName, name).to.equal(tls.tls.secretName);
    }
    for (const name of ['ETCD_USERNAME', 'ETCD_PASSWORD']) {
      expect(env.get(name)?.valueFrom?.secretKeyRef?.name, name).to.be.a('string');
    }
  }

  const monitoringKinds = manifests
    .filter(
      (m) =>
        ['ServiceMonitor', 'PrometheusRule'].includes(m.kind) ||
        m.metadata.name.endsWith('-dashboard'),
    )
    .map((m) => m.kind);
  if (expected.monitoring) {
    const monitors =
      expected.etcdMembers > 0 ? ['ServiceMonitor', 'ServiceMonitor'] : ['ServiceMonitor'];
    expect(monitoringKinds.sort()).to.deep.equal(['ConfigMap', 'PrometheusRule', ...monitors]);
    const monitor = find<IServiceMonitor>(manifests, 'ServiceMonitor', service.metadata!.name);
    expect(monitor.spec.selector.matchLabels).to.satisfy(isSubsetOf(service.metadata!.labels!));
    const portNames = service.spec!.ports!.map((p) => p.name);
    for (const endpoint of monitor.spec.endpoints ?? [])
      expect(portNames).to.include(endpoint.port);
    expect(monitor.metadata?.labels?.release).to.equal('kube-prometheus-stack');
    expect(find(manifests, 'PrometheusRule').metadata.labels?.release).to.equal(
      'kube-prometheus-stack',
    );
  } else {
    expect(monitoringKinds).to.deep.equal([]);
  }

  const test = find<IPod>(manifests, 'Pod');
  expect(test.metadata?.annotations?.['helm.sh/hook']).to.equal('test');
  expect(restrictedViolations(test.spec!)).to.deep.equal([]);
  const workUrl = test.spec!.containers[0]!.env!.find((e) => e.name === 'WORK_URL')!.value!;
  const url = new URL(workUrl);
  expect([url.hostname, Number(url.port || 80)]).to.deep.equal([
    service.metadata!.name,
    service.spec!.ports![0]!.port,
  ]);
  expect(url.pathname).to.equal('/work');
}

function checkEtcd(manifests: Manifest[], members: number, memberLabels: Record<string, string>) {
  const etcd = find<IStatefulSet>(manifests, 'StatefulSet');
  const name = etcd.metadata!.name!;
  const spec = etcd.spec!;
  expect(spec.replicas).to.equal(members);
  expect(spec.podManagementPolicy).to.equal('Parallel');
  const headless = find<IService>(manifests, 'Service', spec.serviceName);
  expect(headless.spec!.clusterIP).to.equal('None');
  expect(headless.spec!.publishNotReadyAddresses).to.equal(true);
  const etcdLabels = spec.template.metadata!.labels!;
  expect(headless.spec!.selector).to.satisfy(isSubsetOf(etcdLabels));
  expect(restrictedViolations(spec.template.spec!)).to.deep.equal([]);

  const container = spec.template.spec!.containers[0] as IContainer;
  expect(container.image).to.match(
    /^(quay\.io\/coreos|gcr\.io\/etcd-development)\/etcd:v3\.5\.\d+(@sha256:[0-9a-f]{64})?$/,
  );
  const flag = (flagName: string) =>
    container.args!.find((a) => a.startsWith(`--${flagName}=`))!.slice(flagName.length + 3);
  const peers = flag('initial-cluster').split(',');
  expect(peers).to.deep.equal(
    Array.from(
      { length: members },
      (_, i) => `${name}-${i}=http://${name}-${i}.$(SERVICE_NAME):2380`,
    ),
  );
  const serviceName = container.env!.find((e) => e.name === 'SERVICE_NAME')!.value;
  expect(serviceName).to.equal(headless.metadata!.name);
  expect(container.readinessProbe?.httpGet?.path).to.equal('/readyz');
  expect(container.livenessProbe?.httpGet?.path).to.equal('/livez');

  // Only the pool's members (and etcd) reach etcd's client port.
  const policy = find<INetworkPolicy>(manifests, 'NetworkPolicy', name);
  expect(policy.spec!.podSelector?.matchLabels).to.satisfy(isSubsetOf(etcdLabels));
  const clientRule = policy.spec!.ingress!.find((rule) => rule.ports?.[0]?.port === 'etcd-client')!;
  const selectors = clientRule.from!.map((peer) => peer.podSelector?.matchLabels ?? {});
  expect(selectors.some((labels) => isSubsetOf(memberLabels)(labels))).to.equal(true);
  expect(selectors.every((labels) => Object.keys(labels).length > 0)).to.equal(true);
}

function isSubsetOf(labels: Record<string, string>) {
  return (subset: Record<string, string> | undefined) =>
    subset !== undefined &&
    Object.keys(subset).length > 0 &&
    Object.entries(subset).every(([key, value]) => labels[key] === value);
}
