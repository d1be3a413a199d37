// `npm run bench -- <benchmark> [options]`: benchmarks on the local clusters (not timed tests).
import { Command } from 'commander';
import { benchMirror } from './mirror.ts';
import { benchStreams, SECTIONS, type Section } from './streams.ts';
import { benchTakeover } from './takeover.ts';

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

program
  .command('streams')
  .description(
    'logs throughput, exec round trips, idle `logs -f` memory and slow-reader memory through the host (Spillway’s kubelet API), next to the remote directly',
  )
  .option('--sections <list>', `what to measure, comma-separated: ${SECTIONS.join(', ')}`, SECTIONS.join(','))
  .option('--log-mib <n>', 'size of the CRI log file KWOK serves, in MiB', '64')
  .option('--reads <n>', 'whole-log reads per path', '3')
  .option('--execs <n>', 'sequential `echo hi` execs per path', '200')
  .option('--idle <n>', 'idle `logs -f` sessions open at once, per path', '1000')
  .option('--seq-lines <n>', 'the slow reader reads `seq 1 N` (38000000: 330,888,897 bytes)', '38000000')
  .option('--stall-seconds <n>', 'how long the slow reader waits before reading', '20')
  .action(
    async (options: {
      sections: string;
      logMib: string;
      reads: string;
      execs: string;
      idle: string;
      seqLines: string;
      stallSeconds: string;
    }) => {
      const sections = options.sections.split(',').map((s) => s.trim());
      const unknown = sections.filter((s) => !(SECTIONS as readonly string[]).includes(s));
      if (unknown.length > 0)
        program.error(`--sections: unknown ${unknown.join(', ')} (known: ${SECTIONS.join(', ')})`);
      await benchStreams({
        sections: sections as Section[],
        logMib: Number(options.logMib),
        reads: Number(options.reads),
        execs: Number(options.execs),
        idle: Number(options.idle),
        seqLines: Number(options.seqLines),
        stallSeconds: Number(options.stallSeconds),
      });
    },
  );

program
  .command('takeover')
  .description(
    "high availability: how soon a killed replica's remotes are owned again, next to the Lease-expiry floor",
  )
  .option('--rounds <n>', 'replicas killed, one after another', '3')
  .action(async (options: { rounds: string }) => {
    await benchTakeover({ rounds: Number(options.rounds) });
  });

await program.parseAsync();
process.exit(0);
