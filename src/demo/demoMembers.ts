/**
 * The demo's pool members a, b, c as processes it can crash, stop, freeze and start again —
 * each always on its own port and with its own id, so a restarted member is the same
 * instance to its peers (and takes over the registration of its previous incarnation).
 */
import { PoolError } from '../errors.js';
import { describeExit, type ExitStatus } from './childProcesses.js';
import { MemberProcess, type MemberProcessOptions } from './memberProcess.js';

/** Lines of a member's output shown when it fails to start. */
const START_FAILURE_LINES = 10;

export type DemoMemberState = 'running' | 'paused' | 'stopped' | 'killed' | 'exited';

export interface DemoMember {
  readonly id: string;
  readonly url: string;
  readonly state: DemoMemberState;
  readonly pid: number | undefined;
}

/** A command that names no member, or one in the wrong state: shown to the user as it is. */
export class DemoCommandError extends PoolError {
  declare readonly code: 'DEMO_COMMAND_REFUSED';
  constructor(message: string) {
    super('DEMO_COMMAND_REFUSED', message);
    this.name = 'DemoCommandError';
  }
}

interface Slot {
  options: MemberProcessOptions;
  process: MemberProcess | undefined;
  state: DemoMemberState;
  /** Set while the demo itself ends the process, so its exit is not news. */
  ending: boolean;
}

export class DemoMembers {
  private readonly slots = new Map<string, Slot>();
  private readonly startedPids: number[] = [];
  private nextWorker = 0;

  /**
   * @param onUnexpectedExit a member exited without being told to (it crashed, or someone
   *   else signalled it)
   */
  constructor(
    options: MemberProcessOptions[],
    private readonly onUnexpectedExit: (id: string, status: ExitStatus, logFile?: string) => void,
  ) {
    for (const member of options) {
      this.slots.set(member.id, {
        options: member,
        process: undefined,
        state: 'stopped',
        ending: false,
      });
    }
  }

  list(): DemoMember[] {
    return [...this.slots.entries()].map(([id, slot]) => ({
      id,
      url: `http://127.0.0.1:${slot.options.port}`,
      state: slot.state,
      pid: slot.state === 'running' || slot.state === 'paused' ? slot.process?.pid : undefined,
    }));
  }

  get(id: string): DemoMember {
    const member = this.list().find((m) => m.id === id);
    if (member === undefined) throw this.noSuchMember(id);
    return member;
  }

  /** Every process id this demo started, for a check that none is left. */
  get pids(): number[] {
    return [...this.startedPids];
  }

  /** Base URLs of the members that answer (running, not paused), in id order. */
  answering(): string[] {
    return this.list()
      .filter((m) => m.state === 'running')
      .map((m) => m.url);
  }

  /** The next answering member, round-robin: who `work` asks when not told. */
  nextForWork(): DemoMember {
    const answering = this.list().filter((m) => m.state === 'running');
    const member = answering[this.nextWorker++ % Math.max(answering.length, 1)];
    if (member === undefined) throw new DemoCommandError('no member is running: start one');
    return member;
  }

  /** Starts (or starts again) member `id` and resolves once it is ready. */
  async start(id: string): Promise<DemoMember> {
    const slot = this.slot(id);
    if (slot.state === 'running' || slot.state === 'paused') {
      throw new DemoCommandError(`${id} is already running (pid ${slot.process?.pid})`);
    }
    const process = MemberProcess.start(slot.options);
    slot.process = process;
    slot.state = 'running';
    slot.ending = false;
    if (process.pid !== undefined) this.startedPids.push(process.pid);
    let ready = false;
    void process.exited.then((status) => {
      if (slot.process !== process || slot.ending) return;
      slot.state = 'exited';
      // Before it was ready, the failed start says why.
      if (ready) this.onUnexpectedExit(id, status, slot.options.logFile);
    });
    try {
      await process.waitReady();
      ready = true;
    } catch (error) {
      slot.ending = true;
      slot.state = 'exited';
      await process.kill();
      // The first line says what happened; the last lines of its output, why.
      const reason = (error instanceof Error ? error.message : String(error))
        .split('\n')[0]!
        .replace(/; its output:$/, '');
      const output = process.recentOutput().trimEnd().split('\n').slice(-START_FAILURE_LINES);
      throw new DemoCommandError([`${reason}; its last output:`, ...output].join('\n  '));
    }
    return this.get(id);
  }

  /** SIGTERM, the kind shutdown: a leader hands over at once. Resolves with how it ended. */
  stop(id: string): Promise<string> {
    return this.end(id, 'stopped', (process) => process.stop());
  }

  /** SIGKILL, a crash: its lease runs out before the others notice. */
  kill(id: string): Promise<string> {
    return this.end(id, 'killed', (process) => process.kill());
  }

  /** SIGSTOP: a long GC pause, a frozen VM. */
  pause(id: string): void {
    const slot = this.slot(id);
    if (slot.state === 'paused') throw new DemoCommandError(`${id} is already paused`);
    const process = this.running(id, slot);
    process.signal('SIGSTOP');
    slot.state = 'paused';
  }

  resume(id: string): void {
    const slot = this.slot(id);
    if (slot.state !== 'paused') throw new DemoCommandError(`${id} is not paused`);
    slot.process?.signal('SIGCONT');
    slot.state = 'running';
  }

  /** Stops every member still running, together. */
  async stopAll(): Promise<void> {
    await Promise.all(
      [...this.slots.entries()]
        .filter(([, slot]) => slot.state === 'running' || slot.state === 'paused')
        .map(([id]) => this.stop(id)),
    );
  }

  private async end(
    id: string,
    state: 'stopped' | 'killed',
    how: (process: MemberProcess) => Promise<ExitStatus>,
  ): Promise<string> {
    const slot = this.slot(id);
    const process = this.running(id, slot);
    slot.ending = true;
    const status = await how(process);
    slot.state = state;
    return describeExit(status);
  }

  private running(id: string, slot: Slot): MemberProcess {
    if ((slot.state !== 'running' && slot.state !== 'paused') || slot.process === undefined) {
      throw new DemoCommandError(`${id} is not running (start ${id})`);
    }
    return slot.process;
  }

  private slot(id: string): Slot {
    const slot = this.slots.get(id);
    if (slot === undefined) throw this.noSuchMember(id);
    return slot;
  }

  private noSuchMember(id: string): DemoCommandError {
    const ids = [...this.slots.keys()].join(', ');
    return new DemoCommandError(`no member ${JSON.stringify(id)}; the members are ${ids}`);
  }
}
