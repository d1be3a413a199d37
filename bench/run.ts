// `npm run bench [-- <benchmark> [options]]`: benchmarks on the local clusters (not timed tests).
// Without a benchmark name it runs the scale benchmark.
import { Command, Option } from 'commander';
import { benchCache } from './cache.ts';
import { benchMirror } from './mirror.ts';
import { benchScale, SCENARIOS, type Scenario } from './scale.ts';
import { benchStreams, SECTIONS, type Section } from './streams.ts';
import { benchTakeover } from './takeover.ts';

const numbers = (value: string) => value.split(',').map(Number);

const program = new Command('bench')
  .description('Spillway benchmarks on the local clusters')
  .showHelpAfterError();

program
  .command('scale', { isDefault: true })
  .description(
    'bursts of 1k and 10k pods, a restart holding 10k, steady arrivals, 5 virtual nodes × 2k; each next to its floor',
  )
  .addOption(
    new Option('--scenarios <list>', `comma-separated, of ${SCENARIOS.join(', ')}`).default(
      SCENARIOS.join(','),
    ),
  )
  .option('--burst-pods <list>', 'burst sizes (the restart holds the largest)', '1000,10000')
  .option('--steady-rates <list>', 'pods per second, Poisson', '10,50')
  .option('--steady-seconds <n>', 'how long pods arrive at each rate', '120')
  .option('--multi <nodes>x<pods>', 'virtual nodes × pods each', '5x2000')
  .option('--qps <n>', "Spillway's client rate limit for host and remote", '500')
  .option('--workers <n>', "Spillway's pod workers per virtual node", '64')
  .option('--profile', 'CPU profiles and heap snapshots of Spillway, summarised in the results', false)
  .option('--no-floors', 'skip the floors (only while developing: figures without a floor are not results)')
  .option(
    '--node-flags <flags>',
    "node flags for Spillway instead of the container image's (space-separated)",
  )
  .action(async (options: Record<string, string | boolean>) => {
    const scenarios = String(options.scenarios).split(',') as Scenario[];
    for (const s of scenarios) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario "${s}"`);
    const [multiNodes, multiPodsPerNode] = String(options.multi).split('x').map(Number);
    await benchScale({
      scenarios,
      burstPods: numbers(String(options.burstPods)),
      steadyRates: numbers(String(options.steadyRates)),
      steadySeconds: Number(options.steadySeconds),
      multiNodes: multiNodes ?? 5,
      multiPodsPerNode: multiPodsPerNode ?? 2000,
      qps: Number(options.qps),
      workers: Number(options.workers),
      profile: options.profile === true,
      floors: options.floors !== false,
      nodeFlags:
        typeof options.nodeFlags === 'string' ? options.nodeFlags.split(' ').filter(Boolean) : undefined,
    });
  });

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

program
  .command('cache')
  .description(
    'live heap bytes per cached pod: as decoded, host pod, delegate and capacity-view trims (no cluster)',
  )
  .option('--pods <n>', 'pods kept by each cache', '10000')
  .action(async (options: { pods: string }) => {
    await benchCache({ pods: Number(options.pods) });
  });

await program.parseAsync();
process.exit(0);
