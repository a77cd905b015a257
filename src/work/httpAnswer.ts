/**
 * Reading one HTTP/1.1 answer off a member-to-member connection, as its bytes arrive: the
 * forward's own client (memberConnections.ts) needs the status, the Content-Type, the body
 * and whether the connection may carry the next request — nothing else — so it reads them
 * itself instead of paying for Node's general-purpose client on every forward.
 *
 * What it takes (RFC 9112): a status line `HTTP/1.x NNN reason`; header fields `name: value`;
 * a body delimited by Content-Length, by chunked transfer coding (extensions and trailers
 * skipped), or by the end of the connection; informational answers (1xx) skipped; no body for
 * 204 and 304. Anything else — a malformed line, conflicting lengths, a head over
 * MAX_HEAD_BYTES, a body over the caller's limit, bytes after the answer on a connection that
 * sends one request at a time — is an AnswerFormatError, and the connection is not used again.
 *
 * Pure: no I/O, no clock. Nothing blocks.
 */
import { PoolError } from '../errors.js';

/** The answer as the forward needs it. */
export interface HttpAnswer {
  status: number;
  /** Its Content-Type, undefined when it has none. */
  contentType: string | undefined;
  body: Buffer;
  /** Whether the connection may carry another request after this answer. */
  keepAlive: boolean;
  /** How long the member keeps the connection idle (its `Keep-Alive: timeout=N`), in ms. */
  keepAliveMs?: number | undefined;
}

/**
 * The bytes are not an HTTP/1.1 answer this reader takes. The request was sent, so it may
 * have executed: UPSTREAM_FAILED.
 */
export class AnswerFormatError extends PoolError {
  declare readonly code: 'UPSTREAM_FAILED';
  constructor(message: string) {
    super('UPSTREAM_FAILED', message);
    this.name = 'AnswerFormatError';
  }
}

/** Status line and header fields, in bytes: Node's own server refuses heads over 16 KiB. */
export const MAX_HEAD_BYTES = 16 * 1024;

const HEAD_END = Buffer.from('\r\n\r\n');
const CRLF = Buffer.from('\r\n');
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: [^\r\n]*)?$/;
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,8})[ \t]*(?:;.*)?$/;

type Framing =
  | { kind: 'length'; remaining: number }
  | { kind: 'chunked'; stage: 'size' | 'data' | 'data-end' | 'trailers'; remaining: number }
  | { kind: 'close' };

interface Head {
  status: number;
  contentType: string | undefined;
  keepAlive: boolean;
  keepAliveMs: number | undefined;
  framing: Framing;
}

/**
 * One answer, read from the bytes `push`ed to it in the order they came. Make one per
 * request; it is done once `push` or `end` returns the answer.
 */
export class AnswerReader {
  private pending: Buffer = Buffer.alloc(0);
  private head: Head | undefined;
  private readonly bodyParts: Buffer[] = [];
  private bodyBytes = 0;

  /**
   * @param maxBodyBytes the largest body taken; beyond it, an AnswerFormatError.
   * @param noBody the request was HEAD: whatever the head says, no body follows.
   */
  constructor(
    private readonly maxBodyBytes: number,
    private readonly noBody = false,
  ) {}

  /**
   * Takes the next bytes of the connection. Returns the answer once it is complete, undefined
   * while more bytes are needed. Throws AnswerFormatError when the bytes are not an answer,
   * including bytes that follow a complete one.
   */
  push(chunk: Buffer): HttpAnswer | undefined {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    for (;;) {
      if (this.head === undefined) {
        const end = this.pending.indexOf(HEAD_END);
        if (end < 0) {
          if (this.pending.length > MAX_HEAD_BYTES) throw tooLargeHead();
          return undefined;
        }
        if (end > MAX_HEAD_BYTES) throw tooLargeHead();
        const head = this.readHead(this.pending.toString('latin1', 0, end));
        this.pending = this.pending.subarray(end + HEAD_END.length);
        // An informational answer (100 Continue, 103 Early Hints): the real one follows.
        if (head === undefined) continue;
        this.head = head;
      }
      const answer = this.readBody(this.head);
      if (answer === undefined) return undefined;
      if (this.pending.length > 0) {
        throw new AnswerFormatError('bytes after the answer to the only request sent');
      }
      return answer;
    }
  }

  /**
   * The connection ended (no more bytes will come). Returns the answer if the end delimits
   * it; throws AnswerFormatError if the answer is cut short.
   */
  end(): HttpAnswer {
    if (this.head?.framing.kind === 'close') return this.answer(this.head);
    throw new AnswerFormatError('the connection closed before the answer was complete');
  }

  /** The head, or undefined for an informational (1xx) answer. */
  private readHead(text: string): Head | undefined {
    const lines = text.split('\r\n');
    const status = STATUS_LINE.exec(lines[0]!);
    if (!status) throw new AnswerFormatError(`not an HTTP/1.x status line: ${quote(lines[0]!)}`);
    const minor = status[1]!;
    const code = Number(status[2]);
    let contentLength: string | undefined;
    let contentType: string | undefined;
    let chunked = false;
    let transferCoded = false;
    let close = minor === '0';
    let keepAliveMs: number | undefined;
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon);
      if (colon <= 0 || !FIELD_NAME.test(name)) {
        throw new AnswerFormatError(`not a header field: ${quote(line)}`);
      }
      const value = line.slice(colon + 1).trim();
      switch (name.toLowerCase()) {
        case 'content-length':
          if (!/^\d{1,15}$/.test(value) || (contentLength !== undefined && value !== contentLength))
            throw new AnswerFormatError(`a bad or conflicting Content-Length: ${quote(value)}`);
          contentLength = value;
          break;
        case 'transfer-encoding': {
          transferCoded = true;
          const codings = value.toLowerCase().split(',');
          chunked = codings[codings.length - 1]!.trim() === 'chunked';
          break;
        }
        case 'connection':
          for (const token of value.toLowerCase().split(',')) {
            if (token.trim() === 'close') close = true;
            else if (token.trim() === 'keep-alive' && minor === '0') close = false;
          }
          break;
        case 'content-type':
          contentType = value;
          break;
        case 'keep-alive': {
          const timeout = /(?:^|[,;\s])timeout=(\d{1,6})(?:$|[,;\s])/i.exec(value);
          if (timeout) keepAliveMs = Number(timeout[1]) * 1000;
          break;
        }
      }
    }
    if (code === 101) throw new AnswerFormatError('the member switched protocols (101)');
    if (code < 200) return undefined;
    const base = { status: code, contentType, keepAlive: !close, keepAliveMs };
    if (this.noBody || code === 204 || code === 304) {
      return { ...base, framing: { kind: 'length', remaining: 0 } };
    }
    // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3); a coding other than chunked
    // last is delimited by the end of the connection.
    if (chunked) return { ...base, framing: { kind: 'chunked', stage: 'size', remaining: 0 } };
    if (!transferCoded && contentLength !== undefined) {
      const remaining = Number(contentLength);
      if (remaining > this.maxBodyBytes) throw tooLargeBody(this.maxBodyBytes);
      return { ...base, framing: { kind: 'length', remaining } };
    }
    return { ...base, keepAlive: false, framing: { kind: 'close' } };
  }

  /** Takes body bytes from `pending`; the answer once the body is complete. */
  private readBody(head: Head): HttpAnswer | undefined {
    const { framing } = head;
    if (framing.kind === 'close') {
      this.takeBody(this.pending.length);
      return undefined;
    }
    if (framing.kind === 'length') {
      framing.remaining -= this.takeBody(Math.min(framing.remaining, this.pending.length));
      return framing.remaining === 0 ? this.answer(head) : undefined;
    }
    for (;;) {
      if (framing.stage === 'data') {
        framing.remaining -= this.takeBody(Math.min(framing.remaining, this.pending.length));
        if (framing.remaining > 0) return undefined;
        framing.stage = 'data-end';
        continue;
      }
      const eol = this.pending.indexOf(CRLF);
      if (eol < 0) {
        if (this.pending.length > MAX_HEAD_BYTES)
          throw new AnswerFormatError('a chunk line too long');
        return undefined;
      }
      const line = this.pending.toString('latin1', 0, eol);
      this.pending = this.pending.subarray(eol + CRLF.length);
      if (framing.stage === 'data-end') {
        if (line !== '') throw new AnswerFormatError('a chunk longer than its size');
        framing.stage = 'size';
      } else if (framing.stage === 'size') {
        const size = CHUNK_SIZE.exec(line);
        if (!size) throw new AnswerFormatError(`not a chunk size: ${quote(line)}`);
        framing.remaining = parseInt(size[1]!, 16);
        framing.stage = framing.remaining === 0 ? 'trailers' : 'data';
      } else if (line === '') {
        return this.answer(head);
      }
    }
  }

  /** Moves `count` bytes of `pending` to the body, within the limit; returns `count`. */
  private takeBody(count: number): number {
    if (count === 0) return 0;
    this.bodyBytes += count;
    if (this.bodyBytes > this.maxBodyBytes) throw tooLargeBody(this.maxBodyBytes);
    this.bodyParts.push(this.pending.subarray(0, count));
    this.pending = this.pending.subarray(count);
    return count;
  }

  private answer(head: Head): HttpAnswer {
    const parts = this.bodyParts;
    const body = parts.length === 1 ? parts[0]! : Buffer.concat(parts, this.bodyBytes);
    const { status, contentType, keepAlive, keepAliveMs } = head;
    return { status, contentType, body, keepAlive, keepAliveMs };
  }
}

function tooLargeHead(): AnswerFormatError {
  return new AnswerFormatError(`an answer head over ${MAX_HEAD_BYTES} bytes`);
}

function tooLargeBody(limit: number): AnswerFormatError {
  return new AnswerFormatError(`an answer body over ${limit} bytes`);
}

/** A line as it came, shortened for a message. */
function quote(line: string): string {
  return JSON.stringify(line.length > 80 ? `${line.slice(0, 80)}…` : line);
}
