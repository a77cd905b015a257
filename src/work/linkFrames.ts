/**
 * The framing of a member link (memberLink.ts, http/memberLinks.ts): one upgraded connection
 * between a follower and a leader that carries many forwards at once, each a frame with an id,
 * and their answers, each a frame naming the id it answers, in whatever order they finish.
 *
 * A frame is a header line and `length` bytes:
 * - a forward, follower to leader: `<id> <term> <pool> <via> <length>\n` then the client's JSON
 *   body as it came (`{"payload": ...}`); `term` is the leader's term as the follower saw it
 *   (x-pool-term), `via` the follower's member id (x-pool-via; a link carries first hops only);
 * - an answer, leader to follower: `<id> <status> <length>\n` then the leader's JSON answer;
 * - `0 0 0\n`, leader to follower: "going away" — the leader drains; it answers every forward
 *   it has received or still receives, and the follower sends no more on this link.
 *
 * The bytes are passed through as they are, as in a batch (batchFrames.ts).
 *
 * Pure: no I/O. Nothing blocks.
 */
import { PoolError } from '../errors.js';

/** The `Upgrade` token of a member link, and the path a leader takes it on. */
export const LINK_PROTOCOL = 'service-pool-leader-link';
export const LINK_PATH = '/member-link';

/** The id of the "going away" frame: no forward has it. */
export const GOING_AWAY_ID = 0;
/** Forward ids run 1..MAX_FRAME_ID, then start again at 1. */
export const MAX_FRAME_ID = 0xffffffff;
/** The longest header line either way, newline included: beyond, the link is not one. */
const MAX_HEADER_BYTES = 400;

const NEWLINE = 0x0a;
const FORWARD_HEADER =
  /^(\d{1,10}) (\d{1,20}) ([a-z0-9_-]{1,63}) ([A-Za-z0-9._-]{1,253}) (\d{1,9})$/;
const ANSWER_HEADER = /^(\d{1,10}) (\d{1,3}) (\d{1,9})$/;

/** A forward as the leader reads it. */
export interface ForwardFrame {
  id: number;
  /** The term the follower saw, decimal (x-pool-term). */
  term: string;
  pool: string;
  /** The follower's member id (x-pool-via). */
  via: string;
  body: Buffer;
}

/** An answer as the follower reads it; id GOING_AWAY_ID is "going away". */
export interface AnswerFrame {
  id: number;
  status: number;
  body: Buffer;
}

/** A forward's frame, as one buffer. */
export function encodeForward(frame: ForwardFrame): Buffer {
  const { id, term, pool, via, body } = frame;
  const header = `${id} ${term} ${pool} ${via} ${body.length}\n`;
  const headerBytes = header.length;
  const bytes = Buffer.allocUnsafe(headerBytes + body.length);
  bytes.write(header, 0, 'latin1');
  body.copy(bytes, headerBytes);
  return bytes;
}

/** An answer's frame, as one buffer; `encodeAnswer(GOING_AWAY_ID, 0, empty)` says "going away". */
export function encodeAnswer(id: number, status: number, body: Buffer): Buffer {
  const header = `${id} ${status} ${body.length}\n`;
  const bytes = Buffer.allocUnsafe(header.length + body.length);
  bytes.write(header, 0, 'latin1');
  body.copy(bytes, header.length);
  return bytes;
}

/** The "going away" frame. */
export const GOING_AWAY = Buffer.from(`${GOING_AWAY_ID} 0 0\n`, 'latin1');

/**
 * The bytes of a link are not frames this side takes (a header it cannot read, a frame over
 * the limit): the link closes, and what was sent on it may or may not have executed.
 */
export class LinkFormatError extends PoolError {
  declare readonly code: 'UPSTREAM_FAILED';
  constructor(message: string) {
    super('UPSTREAM_FAILED', message);
    this.name = 'LinkFormatError';
  }
}

/**
 * Reads frames off a link as its bytes arrive, whatever their chunking: `push` returns the
 * frames each chunk completes; a frame's bytes are shared with the chunk, not copied, when it
 * lies within one. Throws LinkFormatError on a header it cannot read or a frame whose body
 * is over `maxBodyBytes`; the link is not to be read further then.
 */
export class FrameReader<Frame> {
  /** The bytes of a frame not yet complete, as they came; copied together once it is. */
  private parts: Buffer[] = [];
  private partsLength = 0;
  /** How many bytes the frame in `parts` has in all, header included; 0 while unknown. */
  private needed = 0;

  constructor(
    private readonly parse: (fields: RegExpExecArray, body: Buffer) => Frame,
    private readonly headerPattern: RegExp,
    private readonly maxBodyBytes: number,
  ) {}

  push(chunk: Buffer): Frame[] {
    let bytes = chunk;
    if (this.parts.length > 0) {
      this.parts.push(chunk);
      this.partsLength += chunk.length;
      if (this.partsLength < this.needed) return [];
      bytes = Buffer.concat(this.parts, this.partsLength);
      this.parts = [];
      this.partsLength = 0;
      this.needed = 0;
    }
    const frames: Frame[] = [];
    while (bytes.length > 0) {
      const eol = bytes.indexOf(NEWLINE);
      if (eol < 0) {
        if (bytes.length >= MAX_HEADER_BYTES) throw new LinkFormatError('a frame header runs on');
        break;
      }
      const header = bytes.toString('latin1', 0, eol);
      const fields = this.headerPattern.exec(header);
      if (!fields) {
        throw new LinkFormatError(`not a frame header: ${JSON.stringify(header.slice(0, 80))}`);
      }
      const length = Number(fields[fields.length - 1]);
      if (length > this.maxBodyBytes) {
        throw new LinkFormatError(
          `a frame of ${length} bytes, over the ${this.maxBodyBytes} taken`,
        );
      }
      const end = eol + 1 + length;
      if (end > bytes.length) {
        this.needed = end;
        break;
      }
      frames.push(this.parse(fields, bytes.subarray(eol + 1, end)));
      bytes = bytes.subarray(end);
    }
    if (bytes.length > 0) {
      this.parts = [bytes];
      this.partsLength = bytes.length;
    }
    return frames;
  }
}

/** A reader of forwards (the leader's side). */
export function forwardReader(maxBodyBytes: number): FrameReader<ForwardFrame> {
  return new FrameReader(
    ([, id, term, pool, via], body) => {
      const frameId = Number(id);
      if (frameId === GOING_AWAY_ID || frameId > MAX_FRAME_ID) {
        throw new LinkFormatError(`a forward with id ${id}`);
      }
      return { id: frameId, term: term!, pool: pool!, via: via!, body };
    },
    FORWARD_HEADER,
    maxBodyBytes,
  );
}

/** A reader of answers (the follower's side). */
export function answerReader(maxBodyBytes: number): FrameReader<AnswerFrame> {
  return new FrameReader(
    ([, id, status], body) => ({ id: Number(id), status: Number(status), body }),
    ANSWER_HEADER,
    maxBodyBytes,
  );
}
