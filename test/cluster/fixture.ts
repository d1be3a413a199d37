// What test files use to reach the shared clusters started by global-setup.ts.
import { inject } from 'vitest';
import { type KubectlOptions, type KubectlResult, kubectl } from './kubectl.ts';
import type { ClusterInfo } from './provider.ts';
import type { ClusterRole, ShapeOptions } from './shapes.ts';

const extra = new Map<string, ClusterInfo>();

async function control(
  name: string,
  action: 'ensure' | 'stop' | 'start',
  role?: ClusterRole,
  options: ShapeOptions = {},
): Promise<ClusterInfo> {
  const url = new URL(`/clusters/${name}/${action}`, inject('clusterControl'));
  if (role) url.searchParams.set('role', role);
  for (const key of ['verifyKubeletCertificates', 'realNode', 'answerEveryPod'] as const) {
    if (options[key]) url.searchParams.set(key, 'true');
  }
  const response = await fetch(url, { method: 'POST' });
  const body = (await response.json()) as ClusterInfo & { error?: string; cause?: string };
  if (!response.ok) throw new Error(`cluster ${name} ${action}: ${body.error} ${body.cause ?? ''}`);
  return body;
}

export const clusters = {
  /** A cluster started for the whole run (`host`, `remote`) or by an earlier {@link ensure}. */
  get(name: string): ClusterInfo {
    const info = inject('clusters')[name] ?? extra.get(name);
    if (!info) throw new Error(`no cluster named ${name}; use clusters.ensure() for extra ones`);
    return info;
  },
  get host(): ClusterInfo {
    return this.get('host');
  },
  get remote(): ClusterInfo {
    return this.get('remote');
  },
  /**
   * Starts an extra cluster (once per run; shared by every file that asks for the same name, so the
   * options of the first request win).
   */
  async ensure(name: string, role: ClusterRole, options: ShapeOptions = {}): Promise<ClusterInfo> {
    const info = await control(name, 'ensure', role, options);
    extra.set(name, info);
    return info;
  },
  /** Halts a cluster's control plane, keeping its data (a failure drill). */
  stop(name: string): Promise<ClusterInfo> {
    return control(name, 'stop');
  },
  start(name: string): Promise<ClusterInfo> {
    return control(name, 'start');
  },
  get kubectlBinary(): string {
    return inject('kubectlBinary');
  },
  kubectl(name: string, args: readonly string[], options?: KubectlOptions): Promise<KubectlResult> {
    return kubectl(inject('kubectlBinary'), this.get(name).kubeconfig, args, options);
  },
};
