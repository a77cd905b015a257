/**
 * `make bench` / `make bench-smoke`: starts a fresh 3-member etcd cluster, runs every benchmark
 * on it one after the other (never side by side: they would share the 2 cores), prints a
 * progress line per step and the tables at the end, and writes
 * - bench/results/<ISO date>.json: the machine, the exact command and every raw figure;
 * - docs/benchmarks.md and docs/images/bench/*.svg: tables and plots from that run.
 *
 * `--smoke` runs the fewest trials in seconds, so the suite cannot rot: it renders the docs in
 * memory (to exercise the renderer) and writes only test-artifacts/bench-smoke.json.
 * `--only failover,scale` runs a subset (for working on one benchmark): its record goes to
 * test-artifacts/bench-<names>.json and the docs are not written. `--rounds <n>` caps the
 * interleaved rounds (failover trials per scenario, throughput rounds) for a short real run;
 * its record goes to test-artifacts too.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { LocalEtcd } from '../src/demo/localEtcd.js';
import { assertCliBuilt } from '../src/demo/memberProcess.js';
import { failover } from './failover.js';
import { scale } from './scale.js';
import { throughput } from './throughput.js';
import { renderSvg } from './plot.js';
import { machineLine, renderMarkdown, ROOT, writeDocs, type BenchRecord } from './report.js';
import { textTable, type Benchmark, type Section } from './section.js';

/** failover runs the peers (etcd3's Election, Go's via etcdctl) interleaved with its own trials. */
const BENCHMARKS: Record<string, Benchmark> = {
  failover,
  throughput,
  scale,
};

/**
 * The CPU model as lscpu names it ("Model name"), which every result records: absolute times
 * compare only on the same CPU. Node's os.cpus() when lscpu is missing.
 */
function cpuModel(): string | undefined {
  try {
    const model = /^Model name:\s*(.+)$/m.exec(execFileSync('lscpu', { encoding: 'utf8' }))?.[1];
    if (model !== undefined) return model.trim();
  } catch {
    // no lscpu: fall back below
  }
  return os.cpus()[0]?.model;
}

/** Names that once were benchmarks of their own: the peers now run inside failover. */
const ALIASES: Record<string, string> = { peer: 'failover' };

function selected(argv: string[]): string[] {
  const at = argv.indexOf('--only');
  if (at < 0) return Object.keys(BENCHMARKS);
  const asked = (argv[at + 1] ?? '').split(',').filter((name) => name !== '');
  const names = [...new Set(asked.map((name) => ALIASES[name] ?? name))];
  const unknown = names.filter((name) => !(name in BENCHMARKS));
  if (names.length === 0 || unknown.length > 0) {
    throw new Error(
      `--only takes a comma list of: ${Object.keys(BENCHMARKS).join(', ')}` +
        (unknown.length > 0 ? ` (unknown: ${unknown.join(', ')})` : ''),
    );
  }
  return names;
}

/** `--rounds <n>`: a positive whole number, or undefined when not given. */
function roundsCap(argv: string[]): number | undefined {
  const at = argv.indexOf('--rounds');
  if (at < 0) return undefined;
  const rounds = Number(argv[at + 1]);
  if (!Number.isInteger(rounds) || rounds < 1) {
    throw new Error(`--rounds takes a whole number of at least 1, not ${argv[at + 1]}`);
  }
  return rounds;
}

async function main(): Promise<void> {
  const smoke = process.argv.includes('--smoke');
  const names = selected(process.argv);
  const rounds = roundsCap(process.argv);
  // A run cut short is kept apart like a subset: bench/results holds complete runs only.
  const partial = names.length < Object.keys(BENCHMARKS).length || rounds !== undefined;
  assertCliBuilt();
  const startedAt = new Date();
  const t0 = performance.now();
  const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
  const command = ['npx tsx bench/run.ts', ...process.argv.slice(2)].join(' ');
  console.log(`bench${smoke ? ' --smoke' : ''}: ${names.join(', ')}; starting etcd (3 members)…`);
  const etcd = await LocalEtcd.start({ size: 3, fast: true });
  const machine = {
    cores: os.cpus().length,
    cpu: cpuModel(),
    memoryBytes: os.totalmem(),
    node: process.version,
    etcd: etcd.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
  };
  console.log(`machine: ${machineLine(machine)}`);
  const sections: Section[] = [];
  try {
    for (const [i, name] of names.entries()) {
      console.log(`[${elapsed()}] ${i + 1}/${names.length} ${name}`);
      const log = (line: string) => console.log(`[${elapsed()}] ${name}: ${line}`);
      const context = rounds === undefined ? { etcd, smoke, log } : { etcd, smoke, log, rounds };
      sections.push(...[await BENCHMARKS[name]!(context)].flat());
    }
  } finally {
    await etcd.close();
  }
  const durationMs = performance.now() - t0;
  // Every table is printed under the machine it was measured on.
  console.log(`\nmachine: ${machineLine(machine)}`);
  for (const table of sections.flatMap((s) => s.tables)) console.log(`\n${textTable(table)}`);
  console.log('');
  for (const target of sections.flatMap((s) => s.targets)) {
    console.log(`${target.met ? 'met   ' : 'MISSED'} ${target.target}: ${target.measured}`);
  }

  const errors = sections.flatMap((s) => (s.errors ?? []).map((e) => `${s.id}: ${e}`));
  for (const error of errors) console.error(`ERROR ${error}`);
  if (errors.length > 0) process.exitCode = 1;

  const record: BenchRecord = {
    startedAt: startedAt.toISOString(),
    durationMs,
    smoke,
    command,
    machine,
    sections,
  };
  // Only complete runs are kept in bench/results; smoke and --only runs go to test-artifacts.
  const file =
    smoke || partial
      ? path.join(ROOT, 'test-artifacts', `bench-${smoke ? 'smoke' : names.join('-')}.json`)
      : path.join(ROOT, 'bench', 'results', `${record.startedAt.replace(/:/g, '-')}.json`);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(record, null, 2)}\n`);
  const relative = path.relative(ROOT, file);
  console.log(`\nwrote ${relative} (${elapsed()})`);
  if (smoke || partial) {
    // Render anyway, so a broken renderer fails the smoke run rather than the next full run.
    renderMarkdown(record, relative);
    for (const plot of sections.flatMap((s) => s.plots)) renderSvg(plot);
  } else {
    for (const written of await writeDocs(record, relative)) console.log(`wrote ${written}`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
