import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const main = join(import.meta.dirname, '..', '..', 'src', 'main.ts');
const { version } = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8'));

describe('the spillway command line', () => {
  it('prints its version', async () => {
    const { stdout } = await run(process.execPath, [main, 'version']);
    expect(stdout).toBe(`spillway ${version}\n`);
  });

  it('describes itself and its commands in --help', async () => {
    const { stdout } = await run(process.execPath, [main, '--help']);
    expect(stdout).toContain('Usage: spillway');
    expect(stdout).toContain('version');
  });

  it('rejects an unknown command with a non-zero exit and help', async () => {
    const failure = await run(process.execPath, [main, 'frobnicate']).catch(
      (error: { code: number; stderr: string }) => error,
    );
    expect(failure).toMatchObject({ code: 1 });
    expect((failure as { stderr: string }).stderr).toContain("unknown command 'frobnicate'");
  });
});
