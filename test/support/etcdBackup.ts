/**
 * Backup and restore of a local etcd cluster as etcd's disaster-recovery guide has them, for
 * the chaos suite's restore scenario: `etcdctl snapshot save` from one member, and `etcdctl
 * snapshot restore` into a fresh data dir of every member (same name, peer URL and cluster
 * token). Restored, the cluster has the snapshot's keys and revision: what was written after
 * it is gone, and its revision counter is back where the snapshot left it.
 */
import { rm } from 'node:fs/promises';
import type { EtcdCluster } from './etcdCluster.js';
import { LocalProcessError } from '../../src/demo/childProcesses.js';

/** `etcdctl snapshot save` from member `i`: the whole keyspace at its revision. */
export async function saveSnapshot(cluster: EtcdCluster, file: string, i = 0): Promise<void> {
  const result = await cluster.etcdctl(['snapshot', 'save', file], {
    endpoints: [cluster.endpoints[i]!],
  });
  if (result.code !== 0) {
    throw new LocalProcessError('ETCDCTL_FAILED', `snapshot save failed: ${result.stderr}`);
  }
}

/** Stops every member, restores `file` into each one's fresh data dir, starts them all. */
export async function restoreSnapshot(
  cluster: EtcdCluster,
  file: string,
  timeoutMs?: number,
): Promise<void> {
  await cluster.stopAll();
  for (const [i, member] of cluster.members.entries()) {
    const dataDir = cluster.memberFlag(i, 'data-dir');
    await rm(dataDir, { recursive: true, force: true });
    const result = await cluster.etcdctl([
      'snapshot',
      'restore',
      file,
      `--name=${member.name}`,
      `--data-dir=${dataDir}`,
      `--initial-cluster=${cluster.memberFlag(i, 'initial-cluster')}`,
      `--initial-cluster-token=${cluster.memberFlag(i, 'initial-cluster-token')}`,
      `--initial-advertise-peer-urls=${member.peerUrl}`,
    ]);
    if (result.code !== 0) {
      throw new LocalProcessError('ETCDCTL_FAILED', `snapshot restore failed: ${result.stderr}`);
    }
  }
  await cluster.startAll(timeoutMs);
}
