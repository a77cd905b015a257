/**
 * Coalescing forwards by HTTP under load — to a leader that takes no member link
 * (memberLink.ts), which coalesces by itself — as Akka's singleton proxy buffers messages for its
 * singleton: while MAX_IN_FLIGHT exchanges with a leader are under way, clients' requests for
 * it wait here and leave together, as one batch, with the next exchange — one member-to-member
 * request and one answer for many, so that under load a forward costs the leader and the
 * follower a fraction of a request each. Unloaded, nothing waits: a request goes at once,
 * alone, as it always did.
 *
 * A batch goes to POST /pools/<pool>/work-batch (batchFrames.ts: each client's body as it
 * came; the answer, each one's status and bytes). Per request, the outcome is what a single
 * forward gives: the leader's answer relayed, "not leader" (421) retried by the router,
 * nothing sent → retryable, sent and no answer → ambiguous. A leader that does not know the
 * batch route (404: a member embedded in another app, an older version) executed nothing: its
 * requests go again one by one, and that leader's URL gets no batch again. Until a leader has
 * answered a batch, one batch at a time asks it: what waits meanwhile goes one by one, so a
 * leader without the route answers 404 once, however many requests come while it is asked.
 *
 * Only clients' requests (no hop yet) are coalesced: a forwarded request is never forwarded
 * again. Batches of one leader term share its abandon signal (supersession.ts); requests
 * still waiting when it fires were never sent, and go back to the router as "not leader".
 * A request waits at most for the exchange before it, which FORWARD_TIMEOUT_MS bounds.
 */
import { NotLeaderError, PoolError } from '../errors.js';
import { withoutByteOrderMark } from '../util/byteOrderMark.js';
import {
  BATCH_CONTENT_TYPE,
  decodeFrames,
  encodeFrames,
  MAX_BATCH_ITEMS,
  MAX_FRAME_HEADER_BYTES,
} from './batchFrames.js';
import type { HttpAnswer } from './httpAnswer.js';
import {
  relayable,
  requestBody,
  type ForwardRequest,
  type ForwardTarget,
  type UpstreamAnswer,
} from './upstream.js';

/**
 * How long (ms) requests wait for the exchange under way before another starts beside it: a
 * leader that answers in less — the common case under load — gets one exchange at a time and
 * batches as large as the load; a slow one (a handler waiting on an outside call) never holds
 * every other request behind it for longer than this.
 */
export const PATIENCE_MS = 2;
/** The most body bytes of one batch: a batch never exceeds what the leader reads (1 MiB). */
export const MAX_BATCH_BYTES = 1024 * 1024;
/** The most leader URLs whose batch route is remembered: past it, all are asked again. */
const MAX_KNOWN_ROUTES = 1024;
/** The most bytes of one answer in a batch, as of a single forward's. */
const MAX_ITEM_ANSWER_BYTES = 1024 * 1024;

/** What the batches need of the forwarder: a single forward, and one exchange with a batch. */
export interface BatchLink {
  one(
    target: ForwardTarget,
    request: ForwardRequest,
    abandon?: AbortSignal,
  ): Promise<UpstreamAnswer>;
  /**
   * Sends `body` (`items` frames) to the batch route with the forwarding headers of `request`;
   * the answer whatever its status, or the error a single forward rejects with.
   */
  batch(
    target: ForwardTarget,
    request: ForwardRequest,
    body: Buffer,
    items: number,
    abandon?: AbortSignal,
  ): Promise<HttpAnswer>;
}

interface Waiting {
  request: ForwardRequest;
  /** Its body without a byte order mark (frames carry JSON as it is parsed). */
  body: Buffer;
  resolve: (answer: UpstreamAnswer) => void;
  reject: (error: unknown) => void;
}

/** The requests for one leader term: how many exchanges are under way, who waits. */
interface Queue {
  target: ForwardTarget;
  abandon: AbortSignal | undefined;
  inFlight: number;
  waiting: Waiting[];
  /** Armed while requests wait: at PATIENCE_MS, they go in an exchange of their own. */
  patience: NodeJS.Timeout | undefined;
}

export class ForwardBatches {
  private readonly queues = new Map<string, Queue>();
  /**
   * What each leader URL answered to a batch: `asked` while the first batch to it is unanswered
   * (no other batch goes there meanwhile), `takes` once it answered one with frames, `refuses`
   * once it answered 404 (single forwards only, from then on). At most MAX_KNOWN_ROUTES.
   */
  private readonly route = new Map<string, 'asked' | 'takes' | 'refuses'>();

  constructor(private readonly link: BatchLink) {}

  /** Whether `url` refused a batch: send it single forwards. */
  refusedBy(url: string): boolean {
    return this.route.get(url) === 'refuses';
  }

  /** Forwards `request` to `target`, alone at once or in the next batch. Never blocks. */
  submit(
    target: ForwardTarget,
    request: ForwardRequest,
    abandon?: AbortSignal,
  ): Promise<UpstreamAnswer> {
    // One queue per pool, term and leader: a batch goes to one pool's route, under one term.
    const key = `${request.pool} ${target.term} ${target.url}`;
    let queue = this.queues.get(key);
    if (queue === undefined) {
      queue = { target, abandon, inFlight: 0, waiting: [], patience: undefined };
      this.queues.set(key, queue);
    }
    if (queue.inFlight === 0) {
      return this.sending(key, queue, this.link.one(target, request, abandon));
    }
    const body = requestBody(request);
    const waiting = queue;
    return new Promise((resolve, reject) => {
      waiting.waiting.push({ request, body: withoutByteOrderMark(body), resolve, reject });
      this.armPatience(key, waiting);
    });
  }

  /** Lets what waits in `queue` go in an exchange of its own PATIENCE_MS from now. */
  private armPatience(key: string, queue: Queue): void {
    queue.patience ??= setTimeout(() => {
      queue.patience = undefined;
      this.sendWaiting(key, queue, Infinity);
    }, PATIENCE_MS);
  }

  /** Counts `exchange` as under way for `queue` until it settles, then sends what waits. */
  private sending<T>(key: string, queue: Queue, exchange: Promise<T>): Promise<T> {
    queue.inFlight++;
    const settled = () => {
      queue.inFlight--;
      this.sendWaiting(key, queue);
    };
    exchange.then(settled, settled);
    return exchange;
  }

  /**
   * Sends what waits, in one exchange, if fewer than `limit` are under way: 1 when an exchange
   * ended (the next batch follows it), any number when the wait ran out of patience (what is
   * held or in flight is bounded by MAX_PENDING_WORK, not here).
   */
  private sendWaiting(key: string, queue: Queue, limit = 1): void {
    if (queue.waiting.length === 0) {
      clearTimeout(queue.patience);
      queue.patience = undefined;
      if (queue.inFlight === 0 && this.queues.get(key) === queue) this.queues.delete(key);
      return;
    }
    if (queue.abandon?.aborted) {
      // A newer leader was seen and this one did not answer within the grace: what waits was
      // never sent, so it is not this leader's to execute. The router routes it again.
      for (const item of queue.waiting.splice(0)) {
        item.reject(
          new NotLeaderError(`${queue.target.id} was superseded before the request was sent`, {
            upstream: queue.target.id,
          }),
        );
      }
      this.sendWaiting(key, queue);
      return;
    }
    if (this.refusedBy(queue.target.url)) {
      // Found out while these waited: they go one by one, as any forward to that leader.
      for (const item of queue.waiting.splice(0)) this.one(queue, item);
      return;
    }
    if (queue.inFlight >= limit) {
      this.armPatience(key, queue);
      return;
    }
    if (this.route.get(queue.target.url) === 'asked') {
      // The batch asking this leader whether it takes batches is unanswered, and these ran out
      // of patience: they go one by one beside it, each an exchange under way.
      for (const item of queue.waiting.splice(0)) this.sendAlone(key, queue, item);
      return;
    }
    const items = takeBatch(queue.waiting);
    clearTimeout(queue.patience);
    queue.patience = undefined;
    // What is left (a batch is bounded) waits for the next exchange, or its own patience.
    if (queue.waiting.length > 0) this.armPatience(key, queue);
    if (items.length === 1) {
      this.sendAlone(key, queue, items[0]!);
      return;
    }
    void this.sending(key, queue, this.sendBatch(queue, items));
  }

  /** `item` alone, counted under way for `queue` (what waits then follows it). */
  private sendAlone(key: string, queue: Queue, item: Waiting): void {
    const exchange = this.link.one(queue.target, item.request, queue.abandon);
    this.sending(key, queue, exchange).then(item.resolve, item.reject);
  }

  /** `item` alone, not counted in flight: its leader takes no batches. */
  private one(queue: Queue, item: Waiting): void {
    this.link.one(queue.target, item.request, queue.abandon).then(item.resolve, item.reject);
  }

  /** One exchange for `items`; settles each of them. Never rejects. */
  private async sendBatch(queue: Queue, items: Waiting[]): Promise<void> {
    const { target } = queue;
    const asking = !this.route.has(target.url);
    if (asking) {
      // Leaders come and go with their URLs (pods get new addresses): forget them all at times.
      if (this.route.size >= MAX_KNOWN_ROUTES) this.route.clear();
      this.route.set(target.url, 'asked');
    }
    let answer: HttpAnswer;
    try {
      const body = encodeFrames(items.map((item) => ({ status: 0, bytes: item.body })));
      answer = await this.link.batch(target, items[0]!.request, body, items.length, queue.abandon);
    } catch (error) {
      if (asking) this.route.delete(target.url);
      for (const item of items) item.reject(error);
      return;
    }
    // Frames tell the leader takes batches, a 404 (below) that it does not; anything else told
    // nothing, and the next batch asks again.
    if (asking && answer.contentType === BATCH_CONTENT_TYPE) this.route.set(target.url, 'takes');
    else if (asking && answer.status !== 404) this.route.delete(target.url);
    if (answer.status === 404 || answer.status === 413) {
      // The route is unknown there (from now on, one by one), or this batch was too large for
      // it: nothing executed. These go one by one.
      if (answer.status === 404) this.route.set(target.url, 'refuses');
      for (const item of items) this.one(queue, item);
      return;
    }
    if (answer.contentType !== BATCH_CONTENT_TYPE) {
      // The batch as a whole was refused or failed (401, 413, 503, a 421 from a leader that
      // stepped down): that answer is each request's, as it would be to a single forward.
      for (const item of items) settle(item, () => relayable(target, answer));
      return;
    }
    let frames: ReturnType<typeof decodeFrames>;
    try {
      frames = decodeFrames(answer.body, items.length);
      if (frames.length !== items.length) throw new Error(`${frames.length} answers`);
    } catch (error) {
      const failure = new PoolError(
        'UPSTREAM_FAILED',
        `leader ${target.id} answered a batch of ${items.length} with something else (${String(error)}); each request may or may not have executed`,
        { leader: target.id },
      );
      for (const item of items) item.reject(failure);
      return;
    }
    items.forEach((item, i) => {
      const { status, bytes } = frames[i]!;
      if (bytes.length > MAX_ITEM_ANSWER_BYTES) {
        item.reject(
          new PoolError(
            'UPSTREAM_FAILED',
            `leader ${target.id} answered with over ${MAX_ITEM_ANSWER_BYTES} bytes; it may or may not have executed`,
            { leader: target.id },
          ),
        );
        return;
      }
      // The leader writes each answer as it writes a single one (sendJson).
      const contentType = 'application/json; charset=utf-8';
      settle(item, () => relayable(target, { status, body: bytes, contentType, keepAlive: true }));
    });
  }
}

/** Settles `item` with what `answer` returns, or rejects it with what it throws. */
function settle(item: Waiting, answer: () => UpstreamAnswer): void {
  try {
    item.resolve(answer());
  } catch (error) {
    item.reject(error);
  }
}

/**
 * Takes the next batch off `waiting`: at most MAX_BATCH_ITEMS and MAX_BATCH_BYTES as framed
 * (each body and its frame header), at least one.
 */
function takeBatch(waiting: Waiting[]): Waiting[] {
  let count = 0;
  let bytes = 0;
  while (count < waiting.length && count < MAX_BATCH_ITEMS) {
    bytes += waiting[count]!.body.length + MAX_FRAME_HEADER_BYTES;
    if (count > 0 && bytes > MAX_BATCH_BYTES) break;
    count++;
  }
  return waiting.splice(0, count);
}
