// A cross-process lock made of a directory holding the owner's pid, so that two test runs (or a test
// run and `npm run clusters`) never build the same binaries or start the same cluster at once.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function acquireLock(
  path: string,
  report?: (line: string) => void,
): Promise<() => Promise<void>> {
  let announced = false;
  for (;;) {
    try {
      await mkdir(path, { recursive: false });
      await writeFile(join(path, 'pid'), String(process.pid));
      return () => rm(path, { recursive: true, force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        await mkdir(join(path, '..'), { recursive: true });
        continue;
      }
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = Number(await readFile(join(path, 'pid'), 'utf8').catch(() => ''));
    if (owner && !isAlive(owner)) {
      await rm(path, { recursive: true, force: true });
      continue;
    }
    if (!announced && report) {
      report(`spillway: waiting for ${path} (held by pid ${owner || 'unknown'})`);
      announced = true;
    }
    await sleep(500);
  }
}
