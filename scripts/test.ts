// `npm test`: builds the local Kubernetes binaries when they are missing (with progress, since a cold
// build takes minutes), then runs every test: unit tests and the real-cluster integration tests.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ensureBinaries } from '../test/cluster/binaries.ts';

await ensureBinaries();
const vitest = join(import.meta.dirname, '..', 'node_modules', 'vitest', 'vitest.mjs');
const child = spawn(process.execPath, [vitest, 'run', ...process.argv.slice(2)], { stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
