// Where the test run keeps its clusters, and the names of the shared ones.
import { join } from 'node:path';

const repoRoot = join(import.meta.dirname, '..', '..');

/** The remote cluster whose node is a real kubelet, shared by every real-node test file. */
export const REAL_NODE_CLUSTER = 'remote-real';

export function testClustersDir(): string {
  return process.env.SPILLWAY_TEST_CLUSTERS_DIR ?? join(repoRoot, '.spillway', 'test-clusters');
}
