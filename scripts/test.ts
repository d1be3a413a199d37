// `npm test`: builds the local Kubernetes binaries when they are missing (with progress, since a cold
// build takes minutes) and, where this machine can run the real node, its kubelet and images, then
// runs every test: unit tests, the real-cluster integration tests and the real-node tests.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ensureBinaries } from '../test/cluster/binaries.ts';
import { REAL_NODE_CLUSTER, testClustersDir } from '../test/cluster/paths.ts';
import { ensureRealNodeArtifacts } from '../test/cluster/realnode/artifacts.ts';
import { realNodeSupport } from '../test/cluster/realnode/machine.ts';

await ensureBinaries();
if (realNodeSupport(join(testClustersDir(), REAL_NODE_CLUSTER)).ok) await ensureRealNodeArtifacts();
const vitest = join(import.meta.dirname, '..', 'node_modules', 'vitest', 'vitest.mjs');
const child = spawn(process.execPath, [vitest, 'run', ...process.argv.slice(2)], { stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
