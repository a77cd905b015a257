/**
 * Follows the pools as running members see them, for a client that shows changes as they
 * happen (the demo's prompt). It subscribes to a member's `GET /events` (server-sent events:
 * `event: status`, data a snapshot `{pools: [...]}`) and falls back to polling `GET /pools`
 * every 200 ms when the member answers that route with 404 (or sends something else).
 *
 * One member is followed at a time. When it stops answering — killed, stopped, or dropped by
 * the caller because it was paused (see `reconsider`) — the next one in `sources()` is.
 * A member that is frozen while its event stream is open goes silent rather than failing, so
 * a caller that freezes members must call `reconsider`.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { parseJson, poolsOf, type PoolDescription } from './answers.js';
import { fetchPools, isServiceCallError } from './service.js';

export interface PoolWatchOptions {
  /** Base URLs of the members worth asking, in order of preference; asked on every switch. */
  sources: () => string[];
  /** Every snapshot, changed or not; from whichever member is followed. */
  onSnapshot: (pools: PoolDescription[]) => void;
  /** Default 200 ms. */
  pollIntervalMs?: number;
  /** Bound on one poll and on the wait for an event stream's headers. Default 1 s. */
  requestTimeoutMs?: number;
}

/** A member that just failed is skipped for this long when another one can be asked. */
const FAILED_SOURCE_PAUSE_MS = 1000;

export class PoolWatch {
  private stopped = false;
  private following: { url: string; controller: AbortController } | undefined;
  private eventsUnsupported = false;
  private readonly failedAt = new Map<string, number>();
  private readonly idle = new AbortController();
  private readonly done: Promise<void>;

  constructor(private readonly options: PoolWatchOptions) {
    this.done = this.run();
  }

  /** Drops the member being followed if `sources()` no longer lists it (paused, stopped). */
  reconsider(): void {
    const following = this.following;
    if (following !== undefined && !this.options.sources().includes(following.url)) {
      following.controller.abort();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.following?.controller.abort();
    this.idle.abort();
    await this.done;
  }

  private get pollIntervalMs(): number {
    return this.options.pollIntervalMs ?? 200;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const url = this.pick();
      // No member to ask, or only one that just failed: do not spin.
      if (url === undefined || this.failedRecently(url)) {
        await this.pause(this.pollIntervalMs, this.idle.signal);
        if (url === undefined) continue;
      }
      const controller = new AbortController();
      this.following = { url, controller };
      try {
        const followed = this.eventsUnsupported
          ? 'unsupported'
          : await this.followEvents(url, controller.signal);
        if (followed === 'unsupported') {
          this.eventsUnsupported = true;
          await this.poll(url, controller.signal);
        }
      } finally {
        this.following = undefined;
      }
    }
  }

  /** The first source that has not just failed, else the first source. */
  private pick(): string | undefined {
    const sources = this.options.sources();
    return sources.find((url) => !this.failedRecently(url)) ?? sources[0];
  }

  private failedRecently(url: string): boolean {
    return performance.now() - (this.failedAt.get(url) ?? -Infinity) <= FAILED_SOURCE_PAUSE_MS;
  }

  private failed(url: string): void {
    this.failedAt.set(url, performance.now());
  }

  /**
   * Resolves when the stream ends or fails; with 'unsupported' on a 404, or when a `status`
   * event does not carry the pools.
   */
  private async followEvents(url: string, signal: AbortSignal): Promise<'ended' | 'unsupported'> {
    // The timeout bounds the wait for the answer's headers, not the stream that follows.
    const unanswered = new AbortController();
    const timer = setTimeout(() => unanswered.abort(), this.options.requestTimeoutMs ?? 1000);
    let body: ReadableStream<Uint8Array>;
    try {
      const response = await fetch(`${url}/events`, {
        headers: { accept: 'text/event-stream' },
        signal: AbortSignal.any([signal, unanswered.signal]),
      });
      if (response.status === 404) {
        await response.body?.cancel();
        return 'unsupported';
      }
      if (response.status !== 200 || response.body === null) {
        await response.body?.cancel();
        this.failed(url);
        return 'ended';
      }
      body = response.body;
    } catch {
      this.failed(url);
      return 'ended';
    } finally {
      clearTimeout(timer);
    }
    try {
      for await (const event of serverSentEvents(body)) {
        if (event.type !== 'status') continue;
        const pools = poolsOf(parseJson(event.data));
        // A stream of another shape is no use: polling GET /pools is.
        // Leaving the loop cancels the stream.
        if (pools === undefined) return 'unsupported';
        this.options.onSnapshot(pools);
      }
    } catch {
      // The member went away mid-stream, or we dropped it.
    }
    if (!signal.aborted) this.failed(url);
    return 'ended';
  }

  private async poll(url: string, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        const { pools } = await fetchPools(url, {
          timeoutMs: this.options.requestTimeoutMs ?? 1000,
          signal,
        });
        this.options.onSnapshot(pools);
      } catch (error) {
        if (isServiceCallError(error)) this.failed(url);
        return;
      }
      await this.pause(this.pollIntervalMs, signal);
    }
  }

  private async pause(ms: number, signal: AbortSignal): Promise<void> {
    try {
      await delay(ms, undefined, { signal });
    } catch {
      // Aborted: the caller looks at why.
    }
  }
}

interface ServerSentEvent {
  type: string;
  data: string;
}

/** The events of a text/event-stream body: `event:` and `data:` fields, dispatched on a blank line. */
async function* serverSentEvents(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<ServerSentEvent> {
  const decoder = new TextDecoder();
  let buffered = '';
  let type = '';
  let data: string[] = [];
  for await (const chunk of body) {
    buffered += decoder.decode(chunk, { stream: true });
    const lines = buffered.split(/\r\n|\r|\n/);
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      if (line === '') {
        if (data.length > 0) yield { type: type || 'message', data: data.join('\n') };
        type = '';
        data = [];
        continue;
      }
      const colon = line.indexOf(':');
      if (colon === 0) continue;
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') type = value;
      else if (field === 'data') data.push(value);
    }
  }
}
