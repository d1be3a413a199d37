// Spillway as its own process (`spillway run --config …`), so the chaos suite can SIGKILL it in the
// middle of its work and start it again, as a crash and a restart by its Deployment would. Its log
// lines go to one file across restarts; the suite reads them afterwards (e.g. the 410s it relisted on).
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

const main = join(import.meta.dirname, '..', '..', 'src', 'main.ts');

export class SpillwayProcess {
  private readonly config: string;
  readonly logFile: string;
  private child: ChildProcess | undefined;
  kills = 0;

  constructor(config: string, logFile: string) {
    this.config = config;
    this.logFile = logFile;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    if (this.child) throw new Error('spillway already running');
    const log = openSync(this.logFile, 'a');
    try {
      const child = spawn(process.execPath, [main, 'run', '--config', this.config], {
        stdio: ['ignore', log, log],
      });
      child.on('exit', () => {
        if (this.child === child) this.child = undefined;
      });
      this.child = child;
    } finally {
      closeSync(log);
    }
  }

  /** SIGKILL: no shutdown, no last write; resolves once the process is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.kills++;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    this.child = undefined;
  }

  /** SIGTERM, as at the end of a run. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const forced = setTimeout(() => child.kill('SIGKILL'), 25_000);
    await exited;
    clearTimeout(forced);
    this.child = undefined;
  }

  /** Log lines (JSON) whose message matches. */
  async logLines(message: RegExp): Promise<string[]> {
    const text = await readFile(this.logFile, 'utf8').catch(() => '');
    return text.split('\n').filter((line) => message.test(line));
  }
}
