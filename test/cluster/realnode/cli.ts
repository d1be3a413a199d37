// `npm run real-node -- prepare | status | clean`: the machine side of the real node.
//   prepare  installs the Debian packages and builds the kubelet, agnhost, pause and images (cached)
//   status   whether this machine can run a real node, and whose it is if one runs
//   clean    puts the machine back after a real node whose owner died (done by the next start anyway)
/* biome-ignore-all lint/suspicious/noConsole: a command-line tool talks to its user on the console */
import { Command } from 'commander';
import { formatDuration } from '../binaries.ts';
import { ensureRealNodeArtifacts } from './artifacts.ts';
import { readRecord, realNodeSupport, recordAlive, restoreMachine } from './machine.ts';

const program = new Command('real-node').description(
  'The real node (kubelet, containerd, runc) on this machine',
);
program
  .command('prepare')
  .description('install its Debian packages and build its binaries and images, unless cached')
  .action(async () => {
    const support = realNodeSupport();
    if (!support.ok && !support.reason.startsWith('a real node already runs')) {
      console.log(
        `real-node: NOTICE: this machine cannot run a real node (${support.reason}); tests use KWOK only`,
      );
      return;
    }
    const started = Date.now();
    const artifacts = await ensureRealNodeArtifacts();
    console.log(`real-node: kubelet ${artifacts.kubelet}`);
    for (const image of artifacts.images) console.log(`real-node: image ${image.name} ${image.digest}`);
    console.log(`real-node: ready in ${formatDuration(Date.now() - started)}`);
  });
program
  .command('status')
  .description('can this machine run one, and who runs it')
  .action(() => {
    const record = readRecord();
    if (record) {
      console.log(`real node of ${record.owner}: ${recordAlive(record) ? 'running' : 'dead (run `clean`)'}`);
    }
    const support = realNodeSupport(record?.owner);
    console.log(support.ok ? 'this machine can run a real node' : `no real node here: ${support.reason}`);
  });
program
  .command('clean')
  .description('put the machine back after a real node whose processes died (never touches a live one)')
  .action(async () => {
    const record = readRecord();
    if (!record) return console.log('nothing to clean');
    if (recordAlive(record))
      throw new Error(`the real node of ${record.owner} is running; stop its cluster instead`);
    await restoreMachine(record, [`${record.owner}/real-node`]);
    console.log(`cleaned up after the real node of ${record.owner}`);
  });

program.parseAsync().catch((error: unknown) => {
  console.error(`real-node: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
