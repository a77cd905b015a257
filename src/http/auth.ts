/**
 * Shared-secret checks: the forward token between members and the admin bearer token. The
 * comparison takes the same time whatever the guess, so the secret cannot be found byte by
 * byte by timing answers.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

/** Whether `presented` equals `secret`, compared in constant time. */
export function secretMatches(presented: string | undefined, secret: string): boolean {
  if (presented === undefined) return false;
  // Hashing first gives equal lengths, which timingSafeEqual needs, without leaking length.
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(presented), digest(secret));
}

/** The token of an `Authorization: Bearer <token>` header. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}
