// Runs the harness's kubectl against a cluster, the way a person would.
import { execFile } from 'node:child_process';

export interface KubectlResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

export interface KubectlOptions {
  readonly input?: string | Buffer;
  readonly timeoutMs?: number;
  /** Resolve with a non-zero exit code instead of rejecting. */
  readonly allowFailure?: boolean;
}

export function kubectl(
  binary: string,
  kubeconfig: string,
  args: readonly string[],
  options: KubectlOptions = {},
): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      binary,
      [`--kubeconfig=${kubeconfig}`, ...args],
      { timeout: options.timeoutMs ?? 60_000, maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        const exitCode = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        if (error && !options.allowFailure) {
          reject(
            new Error(`kubectl ${args.join(' ')} failed (${exitCode}): ${stderr.trim()}`, { cause: error }),
          );
        } else {
          resolve({ stdout, stderr, exitCode });
        }
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}
