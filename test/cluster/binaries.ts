// Builds (once) and locates the binaries the local clusters run: a multi-call Kubernetes binary
// (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl) built from the Go
// modules in ./harness, and kwok and metrics-server installed with `go install` (each from its own
// module, so neither moves the Kubernetes dependencies the harness pins). Everything is cached under
// directories keyed by the versions and a hash of the harness sources, so a rebuild happens only when
// they change.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { acquireLock } from './lock.ts';

const execFileAsync = promisify(execFile);

export const KUBERNETES_VERSION = 'v1.36.3';
export const KWOK_VERSION = 'v0.8.0';
export const METRICS_SERVER_VERSION = 'v0.9.0';
export const PERSONALITIES = [
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kubectl',
];

const harnessDir = join(dirname(fileURLToPath(import.meta.url)), 'harness');

export interface Binaries {
  readonly dir: string;
  readonly k8s: string;
  readonly etcd: string;
  readonly kubeApiserver: string;
  readonly kubeControllerManager: string;
  readonly kubeScheduler: string;
  readonly kubectl: string;
  readonly kwok: string;
  /** kwok's Stage manifests (node initialise and heartbeat, pod ready/complete/delete). */
  readonly kwokStages: string;
  /** kwok's CRD manifests (Logs, Exec, Attach, PortForward, Metric, ResourceUsage and their cluster-wide kinds). */
  readonly kwokCrds: string;
  /** metrics-server, which host clusters run so that `kubectl top` works as on a real cluster. */
  readonly metricsServer: string;
}

export function cacheRoot(): string {
  return (
    process.env.SPILLWAY_CACHE_DIR ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'spillway')
  );
}

async function harnessHash(): Promise<string> {
  const hash = createHash('sha256');
  for (const file of ['go.mod', 'go.sum', 'cmd/k8s/main.go']) {
    hash.update(file).update(await readFile(join(harnessDir, file)));
  }
  hash.update(KWOK_VERSION);
  return hash.digest('hex').slice(0, 12);
}

function metricsServerDir(): string {
  return join(cacheRoot(), `metrics-server-${METRICS_SERVER_VERSION}`);
}

function layout(dir: string): Binaries {
  return {
    metricsServer: join(metricsServerDir(), 'metrics-server'),
    dir,
    k8s: join(dir, 'k8s'),
    etcd: join(dir, 'etcd'),
    kubeApiserver: join(dir, 'kube-apiserver'),
    kubeControllerManager: join(dir, 'kube-controller-manager'),
    kubeScheduler: join(dir, 'kube-scheduler'),
    kubectl: join(dir, 'kubectl'),
    kwok: join(dir, 'kwok'),
    kwokStages: join(dir, 'kwok-stages.yaml'),
    kwokCrds: join(dir, 'kwok-crds.yaml'),
  };
}

export type ProgressReporter = (line: string) => void;

const defaultReporter: ProgressReporter = (line) => process.stderr.write(`${line}\n`);

/** Returns the binaries, building whatever is missing. A cold build takes many minutes; progress is reported. */
export async function ensureBinaries(report: ProgressReporter = defaultReporter): Promise<Binaries> {
  const dir = join(cacheRoot(), `k8s-${KUBERNETES_VERSION}-kwok-${KWOK_VERSION}-${await harnessHash()}`);
  const binaries = layout(dir);
  const stamp = join(dir, '.complete');
  const metricsServerStamp = join(metricsServerDir(), '.complete');
  if (existsSync(stamp) && existsSync(metricsServerStamp)) return binaries;

  await mkdir(dir, { recursive: true });
  const release = await acquireLock(join(cacheRoot(), 'build.lock'), report);
  try {
    if (!existsSync(metricsServerStamp)) await installMetricsServer(binaries, metricsServerStamp, report);
    if (existsSync(stamp)) return binaries; // another process built it while we waited
    report(`spillway: building Kubernetes ${KUBERNETES_VERSION} and kwok ${KWOK_VERSION} into ${dir}`);
    report('spillway: a cold build takes about 6 minutes on 2 cores; later runs reuse it');
    const started = Date.now();
    await buildHarness(binaries, report);
    await installKwok(binaries, report);
    await smokeTest(binaries);
    await writeFile(stamp, `${new Date().toISOString()}\n`);
    report(`spillway: binaries ready in ${formatDuration(Date.now() - started)}`);
    return binaries;
  } finally {
    await release();
  }
}

export function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  return seconds < 60
    ? `${seconds}s`
    : `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
}

export function goEnv(): NodeJS.ProcessEnv {
  return { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-trimpath -buildvcs=false' };
}

async function buildHarness(binaries: Binaries, report: ProgressReporter): Promise<void> {
  report('spillway: resolving the Kubernetes Go modules (a cold machine downloads about 850 MB first)');
  const { stdout } = await execFileAsync('go', ['list', '-deps', './cmd/k8s'], {
    cwd: harnessDir,
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
    `-X k8s.io/component-base/version.buildDate=${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}`,
    `-X k8s.io/client-go/pkg/version.gitVersion=${KUBERNETES_VERSION}`,
    '-X k8s.io/client-go/pkg/version.gitMajor=1',
    `-X k8s.io/client-go/pkg/version.gitMinor=${minor}`,
  ];
  const output = `${binaries.k8s}.partial`;
  await runWithProgress(
    'go',
    ['build', '-v', '-ldflags', `-s -w ${versionFlags.join(' ')}`, '-o', output, './cmd/k8s'],
    { cwd: harnessDir, env: goEnv() },
    total,
    'compiling Kubernetes',
    report,
  );
  await rename(output, binaries.k8s);
  for (const name of PERSONALITIES) {
    await rm(join(binaries.dir, name), { force: true });
    await symlink('k8s', join(binaries.dir, name));
  }
}

async function installKwok(binaries: Binaries, report: ProgressReporter): Promise<void> {
  report(`spillway: installing kwok ${KWOK_VERSION} (go install)`);
  await runWithProgress(
    'go',
    ['install', '-v', `sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}`],
    { cwd: binaries.dir, env: { ...goEnv(), GOBIN: binaries.dir } },
    undefined,
    'compiling kwok',
    report,
  );
  const { stdout } = await execFileAsync(
    'go',
    ['mod', 'download', '-json', `sigs.k8s.io/kwok@${KWOK_VERSION}`],
    {
      cwd: binaries.dir,
      env: goEnv(),
    },
  );
  const moduleDir = (JSON.parse(stdout) as { Dir: string }).Dir;
  const stageFiles = [
    'kustomize/stage/node/fast/node-initialize.yaml',
    'kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml',
    'kustomize/stage/pod/fast/pod-ready.yaml',
    'kustomize/stage/pod/fast/pod-complete.yaml',
    'kustomize/stage/pod/fast/pod-delete.yaml',
  ];
  await concatenateYaml(
    stageFiles.map((file) => join(moduleDir, file)),
    binaries.kwokStages,
  );
  const crdDir = join(moduleDir, 'kustomize/crd/bases');
  const crds = (await readdir(crdDir)).filter((file) => file.endsWith('.yaml')).sort();
  await concatenateYaml(
    crds.map((file) => join(crdDir, file)),
    binaries.kwokCrds,
  );
}

async function installMetricsServer(
  binaries: Binaries,
  stamp: string,
  report: ProgressReporter,
): Promise<void> {
  const dir = dirname(binaries.metricsServer);
  await mkdir(dir, { recursive: true });
  report(
    `spillway: installing metrics-server ${METRICS_SERVER_VERSION} (go install, about 2.5 minutes cold)`,
  );
  await runWithProgress(
    'go',
    ['install', '-v', `sigs.k8s.io/metrics-server/cmd/metrics-server@${METRICS_SERVER_VERSION}`],
    { cwd: dir, env: { ...goEnv(), GOBIN: dir } },
    undefined,
    'compiling metrics-server',
    report,
  );
  try {
    await execFileAsync(binaries.metricsServer, ['--version'], { timeout: 30_000 });
  } catch (cause) {
    throw new Error(`smoke test failed: ${binaries.metricsServer} --version`, { cause });
  }
  await writeFile(stamp, `${new Date().toISOString()}\n`);
}

async function concatenateYaml(files: string[], target: string): Promise<void> {
  const documents = await Promise.all(files.map((file) => readFile(file, 'utf8')));
  await writeFile(`${target}.partial`, documents.map((doc) => doc.replace(/^---\n/, '')).join('\n---\n'));
  await copyFile(`${target}.partial`, target);
  await rm(`${target}.partial`);
}

async function smokeTest(binaries: Binaries): Promise<void> {
  const checks: [string, string[]][] = [
    [binaries.etcd, ['--version']],
    [binaries.kubeApiserver, ['--version']],
    [binaries.kubeControllerManager, ['--version']],
    [binaries.kubeScheduler, ['--version']],
    [binaries.kubectl, ['version', '--client']],
    [binaries.kwok, ['--version']],
  ];
  for (const [binary, args] of checks) {
    try {
      await execFileAsync(binary, args, { timeout: 30_000 });
    } catch (cause) {
      throw new Error(`smoke test failed: ${binary} ${args.join(' ')}`, { cause });
    }
  }
}

/**
 * Runs a `go build -v`-style command, turning the package names it prints into a progress line
 * at most every few seconds, so both a person and a CI log can see the build is alive.
 */
export function runWithProgress(
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
  total: number | undefined,
  label: string,
  report: ProgressReporter,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    const started = Date.now();
    let compiled = 0;
    let lastReport = 0;
    let lastPackage = '';
    const errors: string[] = [];
    const onLine = (line: string) => {
      if (/^[\w.-]+(\/[\w.~-]+)*$/.test(line)) {
        compiled++;
        lastPackage = line;
      } else if (line.trim()) {
        errors.push(line);
      }
      const now = Date.now();
      if (now - lastReport >= 15_000) {
        lastReport = now;
        const share = total ? `${Math.min(compiled, total)}/${total} packages` : `${compiled} packages`;
        report(`spillway: ${label}: ${share}, ${formatDuration(now - started)} (${lastPackage})`);
      }
    };
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      lines.forEach(onLine);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) {
        report(`spillway: ${label}: done, ${compiled} packages in ${formatDuration(Date.now() - started)}`);
        resolve();
      } else {
        reject(
          new Error(`${command} ${args.join(' ')} exited with ${code}:\n${errors.slice(-40).join('\n')}`),
        );
      }
    });
  });
}
