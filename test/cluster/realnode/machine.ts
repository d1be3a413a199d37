// What a real node changes on the machine, and how it is put back. A real kubelet uses machine-wide
// paths (its device-plugin socket, /var/log/containers, containerd 1.6's shim sockets), so one real
// node runs per machine: a lock in /run says whose it is. Everything the node changes outside its own
// directories is recorded in that lock before it is changed (sysctls, fixed paths, cgroups, network
// namespaces), so a stop, a failed start, or the next start after a crash puts the machine back.
import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { isAlive } from '../lock.ts';

const execFileAsync = promisify(execFile);

/** The lock directory; it also holds the record of what to restore. */
export const MACHINE_LOCK = '/run/spillway-real-node.lock';
/** Sockets and containerd's state: short paths (unix sockets allow 108 bytes), machine-wide anyway. */
export const RUN_DIR = '/run/spillway-real-node';
export const NETNS = 'spillway-real-node';
export const CGROUP_NAME = 'spillway-real-node';
const CGROUP_ROOT = '/sys/fs/cgroup';

/** Sysctls the kubelet sets at start (kubelet's setupKernelTunables); saved first, restored after. */
export const KUBELET_SYSCTLS = [
  'vm.overcommit_memory',
  'vm.panic_on_oom',
  'kernel.panic',
  'kernel.panic_on_oops',
  'kernel.keys.root_maxkeys',
  'kernel.keys.root_maxbytes',
] as const;

/**
 * Raised while the node runs: containerd and the kubelet each take several inotify instances, and on a
 * machine running many clusters the default 128 per user runs out ("too many open files").
 */
export const RAISED_SYSCTLS = { 'fs.inotify.max_user_instances': 1024 } as const;

/** Paths outside the node's own directories that the kubelet, containerd or CNI create. */
export const FIXED_PATHS = [
  '/run/containerd',
  '/var/lib/kubelet',
  '/var/log/containers',
  '/var/log/pods',
  '/var/lib/cni',
  '/run/netns',
  '/opt/containerd',
] as const;

export interface MachineRecord {
  /** The cluster directory owning the node. */
  readonly owner: string;
  /** Processes of the node (kubelet, containerd, relays); the lock is stale once all are gone. */
  pids: number[];
  /** The process that started it, when attached (a test run); its death ends the node. */
  readonly starter?: number;
  readonly sysctls: Record<string, string>;
  /** Fixed paths that did not exist before the node started: removed at stop. */
  readonly createdPaths: string[];
  /** Network namespaces present before (pod sandboxes make cni-* ones; only new ones are removed). */
  readonly netnsBefore: string[];
  /** Host routes added so that nothing sent to a pod address from the host can leave the machine. */
  routes: string[];
}

export type Support = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export function readSysctl(name: string): string {
  return readFileSync(`/proc/sys/${name.replaceAll('.', '/')}`, 'utf8').trim();
}

export function writeSysctl(name: string, value: string): void {
  try {
    writeFileSync(`/proc/sys/${name.replaceAll('.', '/')}`, value);
  } catch {
    // A sysctl the kernel does not offer was not changed either.
  }
}

/** cgroup v1 controllers (each its own hierarchy), or [''] for a unified cgroup v2 mount. */
export function cgroupHierarchies(): string[] {
  if (existsSync(join(CGROUP_ROOT, 'cgroup.controllers'))) return [''];
  const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n');
  return mounts
    .map((line) => line.split(' '))
    .filter(
      ([, target, type]) =>
        (type === 'cgroup' || type === 'cgroup2') && target?.startsWith(`${CGROUP_ROOT}/`),
    )
    .map(([, target]) => (target as string).slice(CGROUP_ROOT.length + 1));
}

export function readRecord(): MachineRecord | undefined {
  try {
    return JSON.parse(readFileSync(join(MACHINE_LOCK, 'record.json'), 'utf8')) as MachineRecord;
  } catch {
    return undefined;
  }
}

export function writeRecord(record: MachineRecord): void {
  const file = join(MACHINE_LOCK, 'record.json');
  writeFileSync(`${file}.partial`, JSON.stringify(record, null, 2));
  renameSync(`${file}.partial`, file);
}

/**
 * Whether a recorded pid is still one of the node's processes: after a crash, a pid may have been
 * reused by anything else on the machine, which must never be signalled.
 */
export function isNodeProcess(pid: number, owner: string): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes(RUN_DIR) || cmdline.includes(`${owner}/real-node/`);
  } catch {
    return false;
  }
}

export function recordAlive(record: MachineRecord): boolean {
  if (record.starter !== undefined && !isAlive(record.starter)) return false;
  return record.pids.some((pid) => isAlive(pid) && isNodeProcess(pid, record.owner));
}

/**
 * Whether this machine can run a real node for `owner`, and if not, why. Synchronous, so the test
 * configuration can ask it. A node of the same owner, or a stale one, does not stand in the way.
 */
export function realNodeSupport(owner?: string): Support {
  const setting = process.env.SPILLWAY_REAL_NODE ?? 'auto';
  if (setting === 'off' || setting === '0' || setting === 'false') {
    return { ok: false, reason: 'SPILLWAY_REAL_NODE=off' };
  }
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return { ok: false, reason: `needs Linux on x86-64, not ${process.platform}/${process.arch}` };
  }
  if (process.getuid?.() !== 0)
    return { ok: false, reason: 'needs root (containers, cgroups, network namespaces)' };
  const hierarchies = existsSync(CGROUP_ROOT) ? cgroupHierarchies() : [];
  const v1 = ['cpu', 'cpuacct', 'cpuset', 'memory', 'pids'];
  if (!hierarchies.includes('') && !v1.every((c) => hierarchies.some((h) => h.split(',').includes(c)))) {
    return { ok: false, reason: `no usable cgroups under ${CGROUP_ROOT} (needs v2, or v1 ${v1.join(', ')})` };
  }
  for (const tool of ['/usr/bin/apt-get', '/usr/bin/dpkg-query', '/usr/bin/nsenter']) {
    if (!existsSync(tool)) return { ok: false, reason: `${tool} is missing` };
  }
  const record = readRecord();
  if (record && record.owner !== owner && recordAlive(record)) {
    return {
      ok: false,
      reason: `a real node already runs on this machine for ${record.owner} (one real kubelet per machine)`,
    };
  }
  return { ok: true };
}

/**
 * Takes the machine for `owner`: cleans up after a crashed node first, then records what is about to
 * change. Throws when another live node holds the machine.
 */
export async function takeMachine(owner: string, starter: number | undefined): Promise<MachineRecord> {
  const existing = readRecord();
  if (existing) {
    if (existing.owner !== owner && recordAlive(existing)) {
      throw new Error(`a real node already runs on this machine for ${existing.owner} (one per machine)`);
    }
    await restoreMachine(existing);
  }
  rmSync(MACHINE_LOCK, { recursive: true, force: true });
  mkdirSync(MACHINE_LOCK);
  const record: MachineRecord = {
    owner,
    pids: [],
    ...(starter !== undefined ? { starter } : {}),
    sysctls: Object.fromEntries(
      [...KUBELET_SYSCTLS, ...Object.keys(RAISED_SYSCTLS)].map((name) => [name, readSysctl(name)]),
    ),
    createdPaths: FIXED_PATHS.filter((path) => !existsSync(path)),
    netnsBefore: existsSync('/run/netns') ? readdirSync('/run/netns') : [],
    routes: [],
  };
  writeRecord(record);
  return record;
}

/** Puts back the sysctls recorded (all of them, or only those named). */
export function restoreSysctls(record: MachineRecord, only?: readonly string[]): void {
  for (const [name, value] of Object.entries(record.sysctls)) {
    if (only && !only.includes(name)) continue;
    if (readSysctl(name) !== value) writeSysctl(name, value);
  }
}

/** Raises the limits the node needs (never lowers one the machine has set higher). */
export function raiseSysctls(): void {
  for (const [name, minimum] of Object.entries(RAISED_SYSCTLS)) {
    if (Number(readSysctl(name)) < minimum) writeSysctl(name, String(minimum));
  }
}

/** Creates the node's own cgroup in every hierarchy, ready for children (cpuset copied from the parent). */
export function createCgroups(): string {
  for (const hierarchy of cgroupHierarchies()) {
    const dir = join(CGROUP_ROOT, hierarchy, CGROUP_NAME);
    mkdirSync(dir, { recursive: true });
    if (hierarchy.split(',').includes('cpuset')) {
      for (const file of ['cpuset.cpus', 'cpuset.mems']) {
        writeFileSync(join(dir, file), readFileSync(join(CGROUP_ROOT, hierarchy, file), 'utf8').trim());
      }
    }
    if (hierarchy === '') {
      // cgroup v2: the controllers the kubelet needs, for the node's own children only.
      writeFileSync(join(dir, 'cgroup.subtree_control'), '+cpu +cpuset +memory +pids');
    }
  }
  return `/${CGROUP_NAME}`;
}

function cgroupDirsDeepestFirst(): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(join(dir, entry.name));
    }
    found.push(dir);
  };
  for (const hierarchy of cgroupHierarchies()) {
    const dir = join(CGROUP_ROOT, hierarchy, CGROUP_NAME);
    if (existsSync(dir)) walk(dir);
  }
  return found;
}

/** Kills every process in the node's cgroups (containers, pause) and removes the cgroups. */
export async function removeCgroups(): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    let remaining = 0;
    for (const dir of cgroupDirsDeepestFirst()) {
      const procs = existsSync(join(dir, 'cgroup.procs'))
        ? readFileSync(join(dir, 'cgroup.procs'), 'utf8')
        : '';
      for (const pid of procs.split('\n').filter(Boolean).map(Number)) {
        remaining++;
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
    }
    if (remaining === 0) break;
    await sleep(100);
  }
  for (const dir of cgroupDirsDeepestFirst()) {
    // A cgroup goes with rmdir(2) once empty; its control files are not really files.
    for (let attempt = 0; attempt < 50 && existsSync(dir); attempt++) {
      try {
        rmdirSync(dir);
      } catch {
        await sleep(100);
      }
    }
  }
}

/** Processes whose command line mentions `needle` (containerd's shims name their containerd's socket). */
export function processesMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) pids.push(Number(entry));
    } catch {}
  }
  return pids;
}

/** Lazily unmounts every mount below one of the prefixes, deepest first. */
export async function unmountBelow(prefixes: readonly string[]): Promise<void> {
  const points = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4]?.replace(/\\040/g, ' '))
    .filter(
      (point): point is string => !!point && prefixes.some((p) => point === p || point.startsWith(`${p}/`)),
    )
    .sort((a, b) => b.length - a.length);
  for (const point of new Set(points)) {
    await execFileAsync('umount', ['-l', point]).catch(() => {});
  }
}

/** Everything back as it was: processes, mounts, network namespaces, cgroups, sysctls, fixed paths. */
export async function restoreMachine(record: MachineRecord, nodeDirs: readonly string[] = []): Promise<void> {
  for (const pid of record.pids) {
    if (!isNodeProcess(pid, record.owner)) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  await removeCgroups();
  for (const pid of processesMentioning(`${RUN_DIR}/`)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  const newNetns = existsSync('/run/netns')
    ? readdirSync('/run/netns').filter((name) => !record.netnsBefore.includes(name))
    : [];
  await unmountBelow([RUN_DIR, record.owner, ...nodeDirs, ...newNetns.map((n) => `/run/netns/${n}`)]);
  for (const name of newNetns) rmSync(`/run/netns/${name}`, { force: true });
  if (newNetns.includes(NETNS)) await execFileAsync('ip', ['netns', 'delete', NETNS]).catch(() => {});
  for (const route of record.routes ?? []) {
    await execFileAsync('ip', ['route', 'del', 'unreachable', route]).catch(() => {});
  }
  restoreSysctls(record);
  for (const path of record.createdPaths) {
    await unmountBelow([path]);
    rmSync(path, { recursive: true, force: true });
  }
  rmSync(RUN_DIR, { recursive: true, force: true });
  rmSync(MACHINE_LOCK, { recursive: true, force: true });
}
