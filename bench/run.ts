// `npm run bench -- <benchmark> [options]`: benchmarks on the local clusters (not timed tests).
import { Command } from 'commander';
import { benchMirror } from './mirror.ts';

const program = new Command('bench')
  .description('Spillway benchmarks on the local clusters')
  .showHelpAfterError();
program
  .command('mirror')
  .description(
    'mirror throughput and added latency for pods bound to the virtual node, next to a bare-API floor',
  )
  .option('--pods <n>', 'number of pods', '1000')
  .option('--qps <n>', "Spillway's client rate limit for host and remote", '500')
  .option('--workers <n>', "Spillway's pod workers", '64')
  .action(async (options: { pods: string; qps: string; workers: string }) => {
    await benchMirror({
      pods: Number(options.pods),
      qps: Number(options.qps),
      workers: Number(options.workers),
    });
  });

await program.parseAsync();
process.exit(0);
