/**
 * Whether an etcd member of the local cluster is healthy, read from its /health answer.
 */

export interface HttpAnswer {
  status: number;
  body: string;
}

/** etcd 3.4 answers {"health":"true"} only when the member has a leader and serves reads. */
export function isHealthy(answer: HttpAnswer | undefined): boolean {
  if (answer?.status !== 200) return false;
  try {
    return (JSON.parse(answer.body) as { health?: unknown }).health === 'true';
  } catch {
    return false;
  }
}
