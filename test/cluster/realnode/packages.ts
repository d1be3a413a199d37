// The Debian packages a real node needs, installed with apt-get when they are missing (as root; the
// machine's package sources are the only place they come from). Installing never starts a service:
// the real node runs its own containerd with its own configuration.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { ProgressReporter } from '../binaries.ts';

const execFileAsync = promisify(execFile);

export const REAL_NODE_PACKAGES = [
  'containerd', // 1.6: the container runtime (CRI)
  'runc',
  'containernetworking-plugins', // bridge, host-local, loopback
  'socat', // relays between the node's network namespace and the host's loopback
  'iproute2', // ip netns
  'busybox-static', // image userland
  'bash-static', // /bin/sh in the images
  'gcc', // pause, built from upstream's pause.c
  'libc6-dev',
] as const;

/** Installed version of each package, or undefined where it is missing. */
export async function installedVersions(
  packages: readonly string[],
): Promise<Map<string, string | undefined>> {
  const versions = new Map<string, string | undefined>(packages.map((name) => [name, undefined]));
  const { stdout } = await execFileAsync(
    'dpkg-query',
    // dpkg-query's own format placeholders, not a template.
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's format syntax
    ['-W', '-f', '${Package} ${db:Status-Status} ${Version}\n', ...packages],
    {},
  ).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }));
  for (const line of stdout.split('\n')) {
    const [name, status, version] = line.split(' ');
    if (name && status === 'installed') versions.set(name, version);
  }
  return versions;
}

/** Makes sure every package is installed; returns the versions (part of the image cache key). */
export async function ensurePackages(report: ProgressReporter): Promise<Map<string, string>> {
  let versions = await installedVersions(REAL_NODE_PACKAGES);
  const missing = [...versions].filter(([, version]) => !version).map(([name]) => name);
  if (missing.length > 0) {
    report(`spillway: installing Debian packages for the real node: ${missing.join(' ')}`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = () =>
      execFileAsync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], {
        env,
        maxBuffer: 64 * 1024 * 1024,
      });
    const started = Date.now();
    try {
      await install();
    } catch {
      // A fresh machine has no package lists yet.
      await execFileAsync('apt-get', ['update'], { env, maxBuffer: 64 * 1024 * 1024 });
      await install().catch((cause: unknown) => {
        throw new Error(`apt-get install ${missing.join(' ')} failed`, { cause });
      });
    }
    report(`spillway: Debian packages installed in ${Math.round((Date.now() - started) / 1000)}s`);
    versions = await installedVersions(REAL_NODE_PACKAGES);
  }
  const result = new Map<string, string>();
  for (const [name, version] of versions) {
    if (!version) throw new Error(`Debian package ${name} is still missing after apt-get install`);
    result.set(name, version);
  }
  return result;
}
