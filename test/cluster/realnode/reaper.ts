// Watches the process that started a real node attached to it (a test run). When that process dies
// without stopping the node (kill -9, a crash), the kubelet, containerd and relays die with it, but
// containers, mounts, cgroups, sysctls and fixed paths would stay: this puts the machine back.
// Usage (detached, by node.ts): node reaper.ts <starter pid> <owner cluster dir>
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive } from '../lock.ts';
import { readRecord, restoreMachine } from './machine.ts';

const starter = Number(process.argv[2]);
const owner = process.argv[3] ?? '';

for (;;) {
  const record = readRecord();
  if (!record || record.owner !== owner || record.starter !== starter) process.exit(0);
  if (!isAlive(starter)) {
    process.stderr.write(
      `reaper: pid ${starter} died without stopping the real node of ${owner}; cleaning up\n`,
    );
    await restoreMachine(record, [`${owner}/real-node`]);
    process.exit(0);
  }
  await sleep(1000);
}
