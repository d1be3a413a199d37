// Spillway as a separate process, the way an operator runs it (`spillway run` and the admin
// commands): for tests that kill it, run several replicas, or run it with another identity.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { join } from 'node:path';

const main = join(import.meta.dirname, '..', '..', 'src', 'main.ts');

export interface SpillwayProcess {
  readonly child: ChildProcess;
  /** Every line it wrote (stdout and stderr). */
  readonly lines: string[];
  readonly exited: Promise<number | null>;
  /** Log lines (JSON) whose msg matches. */
  logged(message: string | RegExp): Record<string, unknown>[];
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** `entry`: the CLI to run (default src/main.ts; the install test runs a build laid out as the image). */
export function spawnSpillway(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  entry: string = main,
): SpillwayProcess {
  const child = spawn(process.execPath, [entry, 'run', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const lines: string[] = [];
  let partial = '';
  const collect = (chunk: Buffer) => {
    const text = partial + chunk.toString('utf8');
    const parts = text.split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts.filter(Boolean));
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    lines,
    exited,
    logged(message) {
      return lines.flatMap((line) => {
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          const msg = String(entry.msg ?? '');
          return (typeof message === 'string' ? msg === message : message.test(msg)) ? [entry] : [];
        } catch {
          return [];
        }
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a one-shot command (`join`, `leave`, `status`…) and resolves with its exit code and output. */
export function spillwayCommand(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [main, ...args],
      { env: { ...process.env, ...env }, timeout: 300_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
