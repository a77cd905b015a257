/**
 * The UTF-8 byte order mark, which a JSON body may start with: body-parser drops it, and so
 * does every reader of bodies here (the lean path, the framing of batched forwards).
 */

/** `bytes` without a leading UTF-8 byte order mark (a view, not a copy). */
export function withoutByteOrderMark(bytes: Buffer): Buffer {
  return bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? bytes.subarray(3) : bytes;
}
