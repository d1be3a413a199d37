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
  await create('clusterlogs', 'ClusterLogs', {
    logs: [{ logsFile: fixture.logFile, previousLogsFile: fixture.previousLogFile, follow: true }],
  });
  await create('clusterexecs', 'ClusterExec', { execs: [{ local: { workDir: dir } }] });
  await create('clusterattaches', 'ClusterAttach', { attaches: [{ logsFile: fixture.attachFile }] });
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
