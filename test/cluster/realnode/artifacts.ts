// What a real node runs, built once and cached by version like the control plane: the kubelet and
// agnhost from k8s.io/kubernetes (their own Go module in ./go, so the harness and its cache key never
// change), pause from upstream's pause.c, and the three images made from them (../images).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  cacheRoot,
  formatDuration,
  goEnv,
  KUBERNETES_VERSION,
  type ProgressReporter,
  runWithProgress,
} from '../binaries.ts';
import { imageSpecs } from '../images/images.ts';
import { type WrittenImage, writeImageArchive } from '../images/oci.ts';
import { acquireLock } from '../lock.ts';
import { ensurePackages } from './packages.ts';

const execFileAsync = promisify(execFile);
const moduleDir = join(import.meta.dirname, 'go');
const imagesDir = join(import.meta.dirname, '..', 'images');

export interface RealNodeArtifacts {
  readonly kubelet: string;
  readonly agnhost: string;
  readonly pause: string;
  /** OCI archives to import into the node's containerd. */
  readonly images: readonly WrittenImage[];
}

async function hashOf(parts: readonly (string | Buffer)[]): Promise<string> {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part).update('\0');
  return hash.digest('hex').slice(0, 12);
}

const report0: ProgressReporter = (line) => process.stderr.write(`${line}\n`);

/** Installs the Debian packages, builds what is missing and returns the artifacts. */
export async function ensureRealNodeArtifacts(
  report: ProgressReporter = report0,
): Promise<RealNodeArtifacts> {
  const packages = await ensurePackages(report);
  const goHash = await hashOf([
    KUBERNETES_VERSION,
    await readFile(join(moduleDir, 'go.mod')),
    await readFile(join(moduleDir, 'go.sum')),
  ]);
  const binDir = join(cacheRoot(), `real-node-${KUBERNETES_VERSION}-${goHash}`);
  const kubelet = join(binDir, 'kubelet');
  const agnhost = join(binDir, 'agnhost');
  const pause = join(binDir, 'pause');
  const imageHash = await hashOf([
    binDir,
    await readFile(join(imagesDir, 'oci.ts')),
    await readFile(join(imagesDir, 'images.ts')),
    packages.get('busybox-static') ?? '',
    packages.get('bash-static') ?? '',
  ]);
  const imageDir = join(cacheRoot(), `real-node-images-${imageHash}`);
  const imagesFile = join(imageDir, 'images.json');
  if (existsSync(join(binDir, '.complete')) && existsSync(imagesFile)) {
    return { kubelet, agnhost, pause, images: JSON.parse(await readFile(imagesFile, 'utf8')) };
  }
  const release = await acquireLock(join(cacheRoot(), 'real-node-build.lock'), report);
  try {
    if (!existsSync(join(binDir, '.complete'))) {
      await mkdir(binDir, { recursive: true });
      const started = Date.now();
      report(`spillway: building the real node's kubelet and agnhost ${KUBERNETES_VERSION} into ${binDir}`);
      report('spillway: about 1 minute when the control plane was just built, 7 minutes cold on 2 cores');
      await goBuild('k8s.io/kubernetes/cmd/kubelet', kubelet, report);
      await goBuild('k8s.io/kubernetes/test/images/agnhost', agnhost, report);
      await buildPause(pause);
      await execFileAsync(kubelet, ['--version'], { timeout: 30_000 });
      await writeFile(join(binDir, '.complete'), `${new Date().toISOString()}\n`);
      report(`spillway: real node binaries ready in ${formatDuration(Date.now() - started)}`);
    }
    if (!existsSync(imagesFile)) {
      await mkdir(imageDir, { recursive: true });
      const images: WrittenImage[] = [];
      for (const spec of await imageSpecs({ pause, agnhost })) {
        const file = spec.name.replace(/^.*\//, '').replace(':', '-');
        images.push(await writeImageArchive(spec, join(imageDir, `${file}.tar`)));
      }
      await writeFile(`${imagesFile}.partial`, JSON.stringify(images, null, 2));
      await rename(`${imagesFile}.partial`, imagesFile);
      report(`spillway: images ${images.map((i) => i.name).join(', ')} written to ${imageDir}`);
    }
    return { kubelet, agnhost, pause, images: JSON.parse(await readFile(imagesFile, 'utf8')) };
  } finally {
    await release();
  }
}

async function goBuild(pkg: string, output: string, report: ProgressReporter): Promise<void> {
  const { stdout } = await execFileAsync('go', ['list', '-deps', pkg], {
    cwd: moduleDir,
    env: goEnv(),
    maxBuffer: 64 * 1024 * 1024,
  });
  const total = stdout.split('\n').filter(Boolean).length;
  const minor = KUBERNETES_VERSION.split('.')[1];
  const versionFlags = [
    `-X k8s.io/component-base/version.gitVersion=${KUBERNETES_VERSION}`,
    '-X k8s.io/component-base/version.gitMajor=1',
    `-X k8s.io/component-base/version.gitMinor=${minor}`,
    '-X k8s.io/component-base/version.gitTreeState=clean',
  ];
  await runWithProgress(
    'go',
    ['build', '-v', '-ldflags', `-s -w ${versionFlags.join(' ')}`, '-o', `${output}.partial`, pkg],
    { cwd: moduleDir, env: goEnv() },
    total,
    `compiling ${pkg.slice(pkg.lastIndexOf('/') + 1)}`,
    report,
  );
  await rename(`${output}.partial`, output);
}

/** pause from upstream's own source in the module cache: a static binary that sleeps until signalled. */
async function buildPause(output: string): Promise<void> {
  const { stdout } = await execFileAsync(
    'go',
    ['mod', 'download', '-json', `k8s.io/kubernetes@${KUBERNETES_VERSION}`],
    {
      cwd: moduleDir,
      env: goEnv(),
    },
  );
  const source = join((JSON.parse(stdout) as { Dir: string }).Dir, 'build', 'pause', 'linux', 'pause.c');
  await execFileAsync('gcc', [
    '-Os',
    '-static',
    '-Wall',
    '-DVERSION=v3.10.2',
    '-o',
    `${output}.partial`,
    source,
  ]);
  await execFileAsync('strip', [`${output}.partial`]);
  await rename(`${output}.partial`, output);
}
