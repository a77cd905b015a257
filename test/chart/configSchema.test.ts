/**
 * The chart accepts only a configuration the member accepts: values.schema.json's `config` is
 * written from src/config (scripts/chart-config-schema.ts), the templates check what a schema
 * cannot, and every value of a corpus of edge cases goes through both — `helm template` (Helm
 * 3 and 4), then the rendered pod's environment into the member's own `loadConfig`. Also the
 * environment the chart builds: no variable twice, `advertiseUrl`, etcd TLS and users only
 * for an external etcd.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { loadConfig } from '../../src/config/config.js';
import { WHOLE_NUMBERS } from '../../src/config/environment.js';
import { expectedFiles } from '../../scripts/chart-config-schema.js';
import { containerEnvironment, simulatedPod, type Image } from './support/kubelet.js';
import {
  TOOLSETS,
  ensureTools,
  find,
  parseManifests,
  templateChart,
  type Manifest,
  type Toolset,
  type Values,
} from './support/tools.js';
import { VALUES_MATRIX } from './support/valuesMatrix.js';

/** The container's environment comes from the spec alone here: no image ENV matters. */
const NO_IMAGE: Image = { env: {}, entrypoint: [], cmd: [], workdir: '/app' };

interface Case {
  config: Record<string, string | number | boolean | null>;
  /** Why the chart refuses what the member would take; absent: both must decide alike. */
  stricter?: string;
}

/** Edge cases of every variable `config` offers; `module` is a real file on this machine. */
function corpus(module: string): Case[] {
  const cases: Case[] = [];
  for (const [name, { min, max, default: fallback }] of Object.entries(WHOLE_NUMBERS)) {
    if (name === 'PORT') continue; // containerPort sets it
    for (const value of [min - 1, min, min + 1, fallback, max - 1, max, max + 1]) {
      if (value >= 0) cases.push({ config: { [name]: value } });
    }
    cases.push({ config: { [name]: String(fallback) }, stricter: 'whole numbers are integers' });
    cases.push({ config: { [name]: min + 0.5 } });
  }
  const strings: Record<string, (string | number)[]> = {
    POOL: ['a', 'orders-2_b', ' a ', '-a', 'A', 'a'.repeat(63), 'a'.repeat(64), 'a/b'],
    POOLS: ['a,b', ' a , b ,', 'a,,b', ',', 'a,a', 'a, b, a', 'a;b', 'a,B'],
    AVOID_POOLS: ['a', 'a,b', ',', 'b,b', 'x y'],
    LABELS: ['zone=a,disk=ssd', 'zone=', 'zone', 'zone=a b', ',', '=a', `${'k'.repeat(64)}=v`],
    AVOID_LABELS: ['zone', 'zone=a,disk', 'zone=a=b', 'a b'],
    WEIGHT: [0, 2, 1_000_000, '2.5', ' 3 ', '-1', -1, '1e3', '.5'],
    ELECTION_STRATEGY: ['oldest', 'weighted', 'avoid', 'Oldest', 'newest'],
    LOG_LEVEL: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent', 'verbose', 'INFO'],
    LOG_FORMAT: ['json', 'pretty', 'text'],
  };
  for (const [name, values] of Object.entries(strings)) {
    for (const value of values) cases.push({ config: { [name]: value } });
  }
  cases.push(
    { config: { WEIGHT: 2.5 }, stricter: 'a fractional WEIGHT is written as a string' },
    { config: { ELECTION_STRATEGY: ' oldest' }, stricter: 'choices are exact' },
    { config: { ELECTION_STRATEGY: 'module', STRATEGY_MODULE: module } },
    { config: { ELECTION_STRATEGY: 'module' } },
    { config: { STRATEGY_MODULE: module } },
    { config: { LEASE_TTL_SECONDS: 2, LEASE_SAFETY_MARGIN_MS: 999 } },
    { config: { LEASE_TTL_SECONDS: 2, LEASE_SAFETY_MARGIN_MS: 1000 } },
    { config: { LEASE_TTL_SECONDS: 2, ETCD_CALL_TIMEOUT_MS: 1999 } },
    { config: { LEASE_TTL_SECONDS: 2, ETCD_CALL_TIMEOUT_MS: 2000 } },
    { config: { LEASE_TTL_SECONDS: null, ETCD_CALL_TIMEOUT_MS: 5000 } },
    { config: { SHUTDOWN_TIMEOUT_MS: 300 } },
    { config: { SHUTDOWN_TIMEOUT_MS: 301 } },
    { config: { SHUTDOWN_TIMEOUT_MS: 5000, SHUTDOWN_LINGER_MS: 5000 } },
  );
  return cases;
}

/** The member's environment from a rendering: the Deployment's container, as the kubelet fills it. */
function memberEnvironment(manifests: Manifest[], podIp = '10.0.0.7'): Record<string, string> {
  const deployment = find<IDeployment>(manifests, 'Deployment');
  const container = deployment.spec!.template.spec!.containers[0]!;
  const pod = simulatedPod('spl-7d9c-abcde', podIp, {});
  return containerEnvironment(container, pod, NO_IMAGE, manifests);
}

function memberAccepts(env: Record<string, string>): { ok: true } | { ok: false; why: string } {
  try {
    loadConfig(env, { hostname: 'test', pid: 1 });
    return { ok: true };
  } catch (error) {
    return { ok: false, why: (error as Error).message };
  }
}

describe("the chart's `config` and the member's configuration", function () {
  this.timeout(120_000);
  let dir: string;
  let module: string;
  before(() => {
    ensureTools();
    dir = mkdtempSync(path.join(os.tmpdir(), 'spl-config-schema-'));
    module = path.join(dir, 'strategy.mjs');
    writeFileSync(module, 'export function selectLeader(members) { return members[0]; }\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('values.schema.json and files/member-defaults.json are as src/config writes them', async () => {
    for (const [file, text] of await expectedFiles()) {
      expect(
        readFileSync(file, 'utf8'),
        `${file}: run npx tsx scripts/chart-config-schema.ts`,
      ).to.equal(text);
    }
  });

  for (const tools of TOOLSETS) {
    it(`${tools.name}: every value the chart accepts, the member accepts; they refuse alike but where the chart is stricter by design`, async () => {
      const baseline = memberEnvironment(await render(tools, {}));
      const cases = corpus(module);
      const problems: string[] = [];
      let accepted = 0;
      await inBatches(cases, 6, async (c) => {
        const result = await templateChart(tools, { config: c.config });
        const shown = JSON.stringify(c.config);
        // What the member decides of these values, written as a ConfigMap would hold them.
        const direct = { ...baseline };
        for (const [name, value] of Object.entries(c.config)) {
          if (value === null) delete direct[name];
          else direct[name] = String(value);
        }
        const member = memberAccepts(direct);
        if (result.code === 0) {
          accepted++;
          const rendered = memberAccepts(memberEnvironment(parseManifests(result.stdout)));
          if (!rendered.ok)
            problems.push(`${shown}: the chart renders it, the member refuses: ${rendered.why}`);
          if (c.stricter)
            problems.push(`${shown}: expected the chart to refuse it (${c.stricter})`);
        } else {
          const names = Object.keys(c.config).filter((n) => c.config[n] !== null);
          if (!names.some((n) => result.stderr.includes(n))) {
            problems.push(
              `${shown}: the chart's refusal names none of ${names.join(',')}: ${result.stderr}`,
            );
          }
          if (member.ok && !c.stricter)
            problems.push(
              `${shown}: the member takes it, the chart refuses: ${result.stderr.trim()}`,
            );
        }
      });
      expect(problems, problems.join('\n')).to.deep.equal([]);
      expect(accepted, 'cases the chart accepted').to.be.greaterThan(cases.length / 3);
    });
  }

  it('large whole numbers reach the member as written, not as 1e+06', async () => {
    const manifests = await render(TOOLSETS.at(-1)!, {
      config: { TICKET_BLOCK_SIZE: 1_000_000_000, PREEMPT_AFTER_MS: 3_600_000 },
    });
    const env = memberEnvironment(manifests);
    expect(env.TICKET_BLOCK_SIZE).to.equal('1000000000');
    expect(env.PREEMPT_AFTER_MS).to.equal('3600000');
  });

  describe('the environment the chart builds', () => {
    for (const tools of TOOLSETS) {
      it(`${tools.name}: names each variable once in every case of the values matrix`, async () => {
        for (const valuesCase of VALUES_MATRIX) {
          const manifests = await render(tools, valuesCase.values);
          const env = find<IDeployment>(manifests, 'Deployment').spec!.template.spec!.containers[0]!
            .env!;
          const names = env.map((variable) => variable.name);
          expect(names, valuesCase.name).to.deep.equal([...new Set(names)]);
        }
      });
    }

    it('advertiseUrl sets ADVERTISE_URL, e.g. the bracketed form an IPv6 pod needs', async () => {
      const manifests = await render(TOOLSETS.at(-1)!, {
        advertiseUrl: 'http://[$(POD_IP)]:8080',
      });
      const env = memberEnvironment(manifests, 'fd00::7');
      expect(env.ADVERTISE_URL).to.equal('http://[fd00::7]:8080');
      expect(loadConfig(env, { hostname: 'test', pid: 1 }).advertiseUrl).to.equal(
        'http://[fd00::7]:8080',
      );
      const byDefault = memberEnvironment(await render(TOOLSETS.at(-1)!, {}));
      expect(byDefault.ADVERTISE_URL).to.equal('http://10.0.0.7:8080');
    });

    const clashes: { extraEnv: Values[]; says: RegExp }[] = [
      {
        extraEnv: [{ name: 'ADVERTISE_URL', value: 'http://[$(POD_IP)]:8080' }],
        says: /extraEnv\[0\]: ADVERTISE_URL is already set by the chart \(set it with advertiseUrl\)/,
      },
      {
        extraEnv: [{ name: 'LOG_LEVEL', value: 'debug' }],
        says: /extraEnv\[0\]: LOG_LEVEL is already set by config\.LOG_LEVEL/,
      },
      {
        extraEnv: [
          { name: 'HTTP_PROXY', value: 'http://proxy:3128' },
          { name: 'HTTP_PROXY', value: 'http://other:3128' },
        ],
        says: /extraEnv\[1\]: HTTP_PROXY is already set by extraEnv/,
      },
    ];
    for (const tools of TOOLSETS) {
      it(`${tools.name}: refuses an extraEnv that names a variable twice, saying which value to use`, async () => {
        for (const { extraEnv, says } of clashes) {
          const result = await templateChart(tools, { extraEnv });
          expect(result.code, JSON.stringify(extraEnv)).to.not.equal(0);
          expect(result.stderr).to.match(says);
        }
        const fine = await render(tools, { extraEnv: [{ name: 'HTTP_PROXY', value: 'x' }] });
        expect(memberEnvironment(fine).HTTP_PROXY).to.equal('x');
      });

      it(`${tools.name}: refuses etcd.tls and etcd.auth with the bundled etcd, which has neither`, async () => {
        for (const what of ['tls', 'auth']) {
          const result = await templateChart(tools, {
            etcd: { [what]: { enabled: true, secretName: 'etcd-client' } },
          });
          expect(result.code, what).to.not.equal(0);
          expect(result.stderr).to.include(`etcd.${what}.enabled=true applies to an external etcd`);
        }
      });
    }
  });
});

async function render(tools: Toolset, values: Values): Promise<Manifest[]> {
  const result = await templateChart(tools, values);
  if (result.code !== 0) throw new Error(`helm template failed (${tools.name}): ${result.stderr}`);
  return parseManifests(result.stdout);
}

async function inBatches<T>(items: T[], size: number, each: (item: T) => Promise<void>) {
  for (let i = 0; i < items.length; i += size) {
    await Promise.all(items.slice(i, i + size).map(each));
  }
}
