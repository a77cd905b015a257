/**
 * The demo as a playground, driven line by line as a user (or a pipe) would: work from
 * different members, the kind shutdown and the crash of a leader, a rejoin, a freeze, a
 * resignation — and leader changes printed as they happen. Then `quit` leaves nothing behind.
 */
import { existsSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import net from 'node:net';
import { expect } from 'chai';
import { runDemo, type DemoSummary } from '../../src/demo/demo.js';
import { isPortFree } from '../../src/demo/ports.js';
import { runCli } from '../support/cli.js';

/** Members get `count` consecutive ports; away from 8081-8083, which a developer may be using. */
async function freePortRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const ports = Array.from({ length: count }, (_, i) => base + i);
    if ((await Promise.all(ports.map(isPortFree))).every(Boolean)) return base;
  }
  throw new Error(`no ${count} consecutive free ports found`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The demo's output as lines, and a way to type a command and wait for what it prints. */
class Transcript {
  readonly lines: string[] = [];
  private partial = '';
  private waiters: (() => void)[] = [];

  constructor(
    out: NodeJS.ReadableStream,
    private readonly input: NodeJS.WritableStream,
  ) {
    out.setEncoding('utf8');
    out.on('data', (text: string) => {
      const parts = (this.partial + text).split('\n');
      this.partial = parts.pop() ?? '';
      this.lines.push(...parts);
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  /** Index of the first line at or after `from` that matches; fails after `timeoutMs`. */
  async waitFor(pattern: RegExp, from = 0, timeoutMs = 10_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.lines.findIndex((line, i) => i >= from && pattern.test(line));
      if (index !== -1) return index;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `no line matching ${pattern} within ${timeoutMs} ms; the demo printed:\n${this.lines.slice(from).join('\n')}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Types `command`; resolves with the index of its echo `> command`. */
  async type(command: string): Promise<number> {
    const from = this.lines.length;
    this.input.write(`${command}\n`);
    return this.waitFor(new RegExp(`^> ${escape(command)}$`), from);
  }

  /** Types `command` and waits for each pattern in turn after its echo; returns the matches. */
  async run(command: string, patterns: RegExp[], timeoutMs = 10_000): Promise<string[]> {
    const echo = await this.type(command);
    const matched: string[] = [];
    for (const pattern of patterns) {
      matched.push(this.lines[await this.waitFor(pattern, echo + 1, timeoutMs)]!);
    }
    return matched;
  }
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('the demo playground', function () {
  this.timeout(180_000);
  const ttl = 2;
  let input: PassThrough;
  let transcript: Transcript;
  let demo: Promise<DemoSummary>;
  let basePort: number;

  before(async () => {
    basePort = await freePortRange(3);
    input = new PassThrough();
    const out = new PassThrough();
    transcript = new Transcript(out, input);
    demo = runDemo({ basePort, input, out, leaseTtlSeconds: ttl });
    // A failure to start is the test's failure, not an unhandled rejection.
    demo.catch(() => undefined);
    await transcript.waitFor(/^leader: a \(term \d+\)$/, 0, 60_000);
    await transcript.waitFor(/^type help for the commands/);
  });

  after(async () => {
    if (!input.writableEnded) input.end();
    await demo.catch(() => undefined);
  });

  it("the guide points at a follower's status page, and says that elect -l runs until Ctrl-C", () => {
    const guide = transcript.lines.join('\n');
    expect(guide).to.match(
      new RegExp(
        `^status page +http://127\\.0\\.0\\.1:${basePort + 1}/ +\\(live; open it, then kill a\\)$`,
        'm',
      ),
    );
    expect(guide).to.match(/ elect -l \S+ +\(Ctrl-C ends it\)$/m);
  });

  it('work goes round-robin from a, or to the member named with --on, and a does it', async () => {
    const [direct] = await transcript.run('work hello', [/^ticket \d+ by \S+ /]);
    expect(direct).to.match(/^ticket \d+ by a \(term \d+\) via a$/);
    const [forwarded] = await transcript.run('work --on b x', [/^ticket \d+ by \S+ /]);
    expect(forwarded).to.match(/^ticket \d+ by a \(term \d+\) via b → a$/);
  });

  it('status shows the pool (a leads, members oldest first) and every process', async () => {
    const echo = await transcript.type('status');
    // The table is one write; news of the pool may come between it and the processes.
    const heading = await transcript.waitFor(/^pool default: /, echo);
    const table = transcript.lines.slice(heading, heading + 5);
    const processes = transcript.lines[await transcript.waitFor(/^processes: /, echo)];
    expect(table[0]).to.match(/^pool default: leader a \(term \d+\), seen by \w at revision \d+$/);
    const ids = table.slice(2).map((line) => line.replace(/^\s*\*?\s*/, '').split(/\s+/)[0]);
    expect(ids).to.deep.equal(['a', 'b', 'c']);
    expect(table[2]).to.match(
      new RegExp(`^  \\*\\s+a\\s+http://127\\.0\\.0\\.1:${basePort}\\s+\\d+$`),
    );
    expect(processes).to.match(
      /^processes: a running \(pid \d+\), b running \(pid \d+\), c running \(pid \d+\)$/,
    );
  });

  it('stop a, the kind shutdown: b leads at once, and the change is printed', async () => {
    const [change, stopped] = await transcript.run('stop a', [/^leader: (?!none)/, /^a stopped /]);
    expect(change).to.match(/^leader: b \(term \d+\), was a — [\d.]+ s after stop a$/);
    expect(Number(/— ([\d.]+) s/.exec(change!)![1])).to.be.below(2);
    expect(stopped).to.equal('a stopped (exit code 0)');
    const [work] = await transcript.run('work after-stop', [/^ticket/]);
    expect(work).to.match(/^ticket \d+ by b /);
  });

  it('start a: it rejoins with the same id and port, as the youngest; b keeps leading', async () => {
    const [ready, joined] = await transcript.run('start a', [
      /^a ready at /,
      /^a joined the pool$/,
    ]);
    expect(ready).to.match(
      new RegExp(`^a ready at http://127\\.0\\.0\\.1:${basePort} \\(pid \\d+\\)$`),
    );
    expect(joined).to.equal('a joined the pool');
    const [work] = await transcript.run('work --on a y', [/^ticket/]);
    expect(work).to.match(/^ticket \d+ by b \(term \d+\) via a → b$/);
  });

  it('kill b, a crash: c leads once b’s lease runs out, and the change is printed', async () => {
    const [killed, change] = await transcript.run(
      'kill b',
      [/^b killed /, /^leader: c /],
      (ttl + 5) * 1000,
    );
    expect(killed).to.match(/^b killed \(signal SIGKILL\)/);
    expect(change).to.match(/^leader: c \(term \d+\), was b — [\d.]+ s after kill b$/);
  });

  it('pause c, the leader: a takes over once c’s lease runs out; resume c and it rejoins', async () => {
    const [paused, change] = await transcript.run(
      'pause c',
      [/^c paused \(SIGSTOP\)/, /^leader: a /],
      (ttl + 5) * 1000,
    );
    expect(paused).to.match(/^c paused/);
    expect(change).to.match(/^leader: a \(term \d+\)/);
    const [work] = await transcript.run('work during-pause', [/^ticket/]);
    expect(work).to.match(/^ticket \d+ by a /);
    const [resumed, rejoined] = await transcript.run(
      'resume c',
      [/^c resumed/, /^c (joined the pool|registered again)/],
      (ttl + 5) * 1000,
    );
    expect(resumed).to.equal('c resumed (SIGCONT)');
    expect(rejoined).to.match(/^c /);
  });

  it('resign: the leader a steps down and the next oldest, c, leads', async () => {
    const [resigned, change] = await transcript.run('resign', [/resigned/, /^leader: (?!none)/]);
    expect(resigned).to.equal('a resigned as leader of default; it rejoins as the youngest member');
    expect(change).to.match(/^leader: c \(term \d+\), was a — [\d.]+ s after resign$/);
  });

  it('the leader c stopped from another shell (SIGTERM): said as a clean stop, and the handover is timed from its leaving, not from an earlier command', async () => {
    const echo = await transcript.type('status');
    const processes = transcript.lines[await transcript.waitFor(/^processes: /, echo)]!;
    const pid = Number(/c running \(pid (\d+)\)/.exec(processes)?.[1]);
    expect(pid, processes).to.be.greaterThan(0);
    const from = transcript.lines.length;
    process.kill(pid, 'SIGTERM');
    const change = transcript.lines[await transcript.waitFor(/^leader: (?!none)/, from)]!;
    expect(change).to.match(/^leader: a \(term \d+\), was c — [\d.]+ s after c left$/);
    expect(Number(/— ([\d.]+) s/.exec(change)![1])).to.be.below(2);
    const said = transcript.lines[await transcript.waitFor(/^c stopped /, from)]!;
    expect(said).to.equal(
      'c stopped from outside the demo (a clean shutdown, exit code 0); start c brings it back',
    );
    expect(transcript.lines.slice(from).join('\n')).to.not.include('unexpectedly');
  });

  it('mistakes are one line each and change nothing', async () => {
    const [unknown] = await transcript.run('bogus', [/^unknown command/]);
    expect(unknown).to.equal('unknown command "bogus"; type help');
    const [noMember] = await transcript.run('kill z', [/^no member/]);
    expect(noMember).to.equal('no member "z"; the members are a, b, c');
    const [dead] = await transcript.run('work --on b x', [/not running/]);
    expect(dead).to.equal('b is not running (start b)');
  });

  it('quit stops every member and etcd and removes the temporary data', async () => {
    input.write('quit\n');
    const summary = await demo;
    expect(transcript.lines.slice(-3)).to.deep.equal([
      'stopping members (Ctrl-C again to kill everything)…',
      'stopping etcd…',
      'stopped, temp data removed',
    ]);
    expect(existsSync(summary.root), summary.root).to.equal(false);
    // 3 etcd members, a, b, c, and a again.
    expect(summary.pids).to.have.length(7);
    expect(summary.pids.filter(isAlive), 'processes left running').to.deep.equal([]);
    for (const port of [basePort, basePort + 1, basePort + 2]) {
      expect(await isPortFree(port), `port ${port}`).to.equal(true);
    }
  });
});

describe('the demo with its commands piped in', function () {
  this.timeout(120_000);

  it('with a port taken, it starts nothing and says how to pick other ports (make demo BASE_PORT=…)', async () => {
    const basePort = await freePortRange(3);
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(basePort + 1, '127.0.0.1', resolve));
    try {
      const result = await runCli(['demo', '--base-port', String(basePort)], { timeoutMs: 30_000 });
      expect(result.code).to.equal(1);
      expect(result.stderr.trimEnd().split('\n')).to.deep.equal([
        `service-pool-leader: port ${basePort + 1} on 127.0.0.1 is already in use (is another demo running?); free it, or use ports from ${basePort + 1000}: make demo BASE_PORT=${basePort + 1000} (or demo --base-port ${basePort + 1000})`,
      ]);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('runs them line by line and ends cleanly at the end of the input, without quit', async () => {
    const basePort = await freePortRange(3);
    const result = await runCli(['demo', '--base-port', String(basePort)], {
      input: 'work hi\nsimple-work there --on c\nhelp\n',
      timeoutMs: 60_000,
    });
    expect(result.stderr).to.equal('');
    expect(result.code).to.equal(0);
    const lines = result.stdout.trimEnd().split('\n');
    const at = (command: string) => lines.indexOf(`> ${command}`);
    expect(lines[at('work hi') + 1]).to.match(/^ticket \d+ by a \(term \d+\) via a$/);
    expect(lines[at('simple-work there --on c') + 1]).to.match(
      /^ticket \d+ by a \(term \d+\) via c → a$/,
    );
    expect(lines[at('help') + 1]).to.equal('commands:');
    expect(lines.at(-1)).to.equal('stopped, temp data removed');
    const root = /^logs\s+(\S+)\/logs\//m.exec(result.stdout)?.[1];
    expect(root).to.match(/spl-demo-/);
    expect(existsSync(root!)).to.equal(false);
  });
});
