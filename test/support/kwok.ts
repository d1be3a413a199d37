// What kwok's fake kubelet answers for pods of one remote namespace: their logs (from files written in
// the CRI log format), exec (local processes in a work directory), attach (a log file streamed) and
// port-forward (to a local TCP listener).
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kube } from './kube.ts';

export interface KwokFixture {
  readonly dir: string;
  readonly logFile: string;
  readonly previousLogFile: string;
  readonly attachFile: string;
}

/** One CRI log line: `<RFC3339Nano> <stream> F <text>`. */
export function criLine(time: Date, stream: 'stdout' | 'stderr', text: string): string {
  return `${time.toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z')} ${stream} F ${text}\n`;
}

export async function kwokForNamespace(
  remote: Kube,
  namespace: string,
  options: {
    logs: string;
    previousLogs?: string;
    attach?: string;
    forwardTo?: { port: number; target: number };
    /**
     * Pods that get rules of their own as well (namespaced, named like the pod): they win over a
     * cluster-wide rule for every pod (the clusters of `npm run clusters -- up` have one), where kwok
     * would pick either of two cluster-wide rules.
     */
    pods?: readonly string[];
  },
): Promise<KwokFixture> {
  const dir = await mkdtemp(join(tmpdir(), `kwok-${namespace}-`));
  const fixture: KwokFixture = {
    dir,
    logFile: join(dir, 'current.log'),
    previousLogFile: join(dir, 'previous.log'),
    attachFile: join(dir, 'attach.log'),
  };
  await writeFile(fixture.logFile, options.logs);
  await writeFile(fixture.previousLogFile, options.previousLogs ?? '');
  await writeFile(fixture.attachFile, options.attach ?? '');
  const selector = { matchNamespaces: [namespace] };
  const create = (plural: string, kind: string, spec: Record<string, unknown>) =>
    remote.custom.createClusterCustomObject({
      group: 'kwok.x-k8s.io',
      version: 'v1alpha1',
      plural,
      body: {
        apiVersion: 'kwok.x-k8s.io/v1alpha1',
        kind,
        metadata: { name: `${namespace}-${plural}` },
        spec: { selector, ...spec },
      },
    });
  const logs = {
    logs: [{ logsFile: fixture.logFile, previousLogsFile: fixture.previousLogFile, follow: true }],
  };
  const execs = { execs: [{ local: { workDir: dir } }] };
  const attaches = { attaches: [{ logsFile: fixture.attachFile }] };
  await create('clusterlogs', 'ClusterLogs', logs);
  await create('clusterexecs', 'ClusterExec', execs);
  await create('clusterattaches', 'ClusterAttach', attaches);
  for (const pod of options.pods ?? []) {
    for (const [plural, kind, spec] of [
      ['logs', 'Logs', logs],
      ['execs', 'Exec', execs],
      ['attaches', 'Attach', attaches],
    ] as const) {
      await remote.custom.createNamespacedCustomObject({
        group: 'kwok.x-k8s.io',
        version: 'v1alpha1',
        namespace,
        plural,
        body: { apiVersion: 'kwok.x-k8s.io/v1alpha1', kind, metadata: { name: pod, namespace }, spec },
      });
    }
  }
  if (options.forwardTo) {
    await create('clusterportforwards', 'ClusterPortForward', {
      forwards: [
        { ports: [options.forwardTo.port], target: { address: '127.0.0.1', port: options.forwardTo.target } },
      ],
    });
  }
  return fixture;
}

export async function removeKwokForNamespace(remote: Kube, namespace: string): Promise<void> {
  for (const plural of ['clusterlogs', 'clusterexecs', 'clusterattaches', 'clusterportforwards']) {
    await remote.custom
      .deleteClusterCustomObject({
        group: 'kwok.x-k8s.io',
        version: 'v1alpha1',
        plural,
        name: `${namespace}-${plural}`,
      })
      .catch(() => {});
  }
}
