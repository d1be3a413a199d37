import { join } from 'node:path';
import { defineConfig } from 'vitest/config';
import { REAL_NODE_CLUSTER, testClustersDir } from './test/cluster/paths.ts';
import { realNodeSupport } from './test/cluster/realnode/machine.ts';

// Tests on real containers (test/realnode/, tag `real-node`) run whenever this machine can run the
// real node (root, cgroups, no other real node running here); otherwise they are left out, loudly.
const realNode = realNodeSupport(join(testClustersDir(), REAL_NODE_CLUSTER));
if (!realNode.ok && !process.env.VITEST_WORKER_ID) {
  process.stderr.write(
    `\nspillway: NOTICE: the real-node tests (test/realnode/) do not run: ${realNode.reason}; ` +
      'every other test runs on KWOK\n\n',
  );
}

export default defineConfig({
  test: {
    tags: [
      {
        name: 'real-node',
        description: 'runs on real containers: a real kubelet, containerd and runc (test/realnode/)',
      },
    ],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: [
            'test/integration/**/*.test.ts',
            'test/e2e/**/*.test.ts',
            ...(realNode.ok ? ['test/realnode/**/*.test.ts'] : []),
          ],
          globalSetup: ['test/cluster/global-setup.ts'],
          // The clusters are shared; files run one at a time so their load does not skew each other
          // on a 2-core machine.
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
