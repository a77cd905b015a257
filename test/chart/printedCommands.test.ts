/**
 * The commands scripts/lib/cluster.sh prints once the pool is up (`make kind-up`,
 * `make minikube-up`) name what the chart really created: with RELEASE=spl the Service is
 * spl-service-pool-leader, not spl. The script runs against a `kubectl` that answers as a
 * cluster holding the chart's rendered manifests would (label selectors included) and a
 * `helm` that records its arguments.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { REPO_ROOT, TOOLSETS, ensureTools, renderChart, run } from './support/tools.js';

describe('the commands printed after make kind-up / minikube-up', function () {
  this.timeout(60_000);

  before(() => ensureTools());

  for (const release of ['spl', 'service-pool-leader']) {
    it(`RELEASE=${release}: the port-forward names the Service the chart renders`, async () => {
      const manifests = await renderChart(TOOLSETS.at(-1)!, {}, release);
      const services = manifests
        .filter((m) => m.kind === 'Service')
        .map((m) => ({ name: m.metadata.name, labels: m.metadata.labels ?? {} }));
      const dir = mkdtempSync(path.join(os.tmpdir(), 'spl-fake-cluster-'));
      try {
        writeFileSync(path.join(dir, 'services.json'), JSON.stringify(services));
        // `kubectl get service -l a=b,c=d -o name` from the rendered Services; anything else
        // (namespace, rollout status, get pods) succeeds quietly.
        writeFileSync(
          path.join(dir, 'kubectl'),
          [
            `#!${process.execPath}`,
            'const args = process.argv.slice(2);',
            "if (args.includes('get') && args.includes('service')) {",
            "  const selector = args[args.indexOf('-l') + 1].split(',').map((kv) => kv.split('='));",
            `  const services = JSON.parse(require('fs').readFileSync(${JSON.stringify(path.join(dir, 'services.json'))}, 'utf8'));`,
            '  for (const s of services) {',
            '    if (selector.every(([k, v]) => s.labels[k] === v)) console.log(`service/${s.name}`);',
            '  }',
            '}',
            '',
          ].join('\n'),
        );
        writeFileSync(path.join(dir, 'helm'), '#!/bin/sh\nexit 0\n');
        for (const tool of ['kubectl', 'helm']) chmodSync(path.join(dir, tool), 0o755);
        const result = await run(
          'bash',
          ['-c', `source "${REPO_ROOT}/scripts/lib/cluster.sh"; HELM_ARGS=(); deploy_pool`],
          { env: { ...process.env, PATH: `${dir}:${process.env.PATH}`, RELEASE: release } },
        );
        expect(result.code, result.stderr).to.equal(0);
        const pool = services.find(
          (s) => s.labels['app.kubernetes.io/component'] === 'pool-member',
        )!;
        expect(result.stdout).to.include(
          `kubectl -n service-pool-leader port-forward service/${pool.name} 8080:80`,
        );
        expect(pool.name).to.equal(
          release === 'spl' ? 'spl-service-pool-leader' : 'service-pool-leader',
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
