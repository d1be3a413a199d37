// Starting and stopping the processes of a local cluster. Attached processes die with the process that
// started them (PR_SET_PDEATHSIG through the harness binary), so a killed test run leaves nothing behind;
// detached ones (for `npm run clusters`) outlive it and are found again through their pid files.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive } from './lock.ts';

export type ProcessMode = 'attached' | 'detached';

export interface StartedProcess {
  readonly pid: number;
}

export function startProcess(options: {
  harness: string;
  binary: string;
  args: readonly string[];
  logFile: string;
  mode: ProcessMode;
}): StartedProcess {
  const log = openSync(options.logFile, 'a');
  try {
    // Going through `k8s exec` applies the die-with-parent guarantee to any binary, kwok included.
    const child = spawn(options.harness, ['exec', options.binary, ...options.args], {
      stdio: ['ignore', log, log],
      detached: options.mode === 'detached',
      env: {
        ...process.env,
        ...(options.mode === 'attached' ? { SPILLWAY_HARNESS_DIE_WITH_PARENT: String(process.pid) } : {}),
      },
    });
    if (child.pid === undefined) throw new Error(`could not start ${options.binary}`);
    child.on('error', () => {}); // reported through the readiness checks and the log file
    if (options.mode === 'detached') child.unref();
    return { pid: child.pid };
  } finally {
    closeSync(log);
  }
}

/** SIGTERM, then SIGKILL after the grace period; resolves when the process is gone. */
export async function stopProcess(pid: number, graceMs = 10_000): Promise<void> {
  if (!signal(pid, 'SIGTERM')) return;
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid) || isZombie(pid)) return;
    await sleep(50);
  }
  signal(pid, 'SIGKILL');
  while (isAlive(pid) && !isZombie(pid)) await sleep(50);
}

function signal(pid: number, name: NodeJS.Signals): boolean {
  try {
    process.kill(pid, name);
    return true;
  } catch {
    return false;
  }
}

/** An exited child of ours that nobody reaped yet still answers kill(0); it is gone for our purposes. */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}
