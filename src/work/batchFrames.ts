/**
 * The framing of a batch of forwards (forwardBatch.ts): one member-to-member request that
 * carries several clients' requests, and its answer that carries each one's answer. Each item
 * is a frame: a header line `<status> <length>\n` (status 0 in a request) and `length` bytes.
 * The bytes are passed through as they are — a client's JSON body, the leader's JSON answer —
 * so that neither side parses or writes more than it would for single forwards.
 *
 * Pure: no I/O. Nothing blocks.
 */
import { PoolError } from '../errors.js';

/** The Content-Type of a batch and of its answer: members only, never a client. */
export const BATCH_CONTENT_TYPE = 'application/x.service-pool-leader.batch';

/** The most items a batch carries. */
export const MAX_BATCH_ITEMS = 64;

/** One item: its status (0 in a request) and its bytes. */
export interface Frame {
  status: number;
  bytes: Buffer;
}

const NEWLINE = 0x0a;
const HEADER = /^(\d{1,3}) (\d{1,9})$/;
/** The longest frame header: `ddd ddddddddd\n`. */
export const MAX_FRAME_HEADER_BYTES = 14;

/** The frames one after the other, as one buffer. */
export function encodeFrames(frames: readonly Frame[]): Buffer {
  const parts: Buffer[] = [];
  for (const { status, bytes } of frames) {
    parts.push(Buffer.from(`${status} ${bytes.length}\n`, 'latin1'), bytes);
  }
  return Buffer.concat(parts);
}

/**
 * The frames of `bytes`, at most `maxItems` of them (the bytes are shared, not copied).
 * Throws a BAD_REQUEST PoolError when `bytes` are not whole frames.
 */
export function decodeFrames(bytes: Buffer, maxItems = MAX_BATCH_ITEMS): Frame[] {
  const frames: Frame[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (frames.length === maxItems) throw badFrames(`more than ${maxItems} items`);
    const eol = bytes.indexOf(NEWLINE, at);
    const header = eol < 0 ? undefined : HEADER.exec(bytes.toString('latin1', at, eol));
    if (!header) throw badFrames(`no frame header at byte ${at}`);
    const end = eol + 1 + Number(header[2]);
    if (end > bytes.length) throw badFrames(`a frame at byte ${at} runs past the end`);
    frames.push({ status: Number(header[1]), bytes: bytes.subarray(eol + 1, end) });
    at = end;
  }
  return frames;
}

function badFrames(why: string): PoolError {
  return new PoolError('BAD_REQUEST', `not a batch of forwards: ${why}`);
}
