// The churn the chaos suite runs on the host while it injects faults: Deployments created, scaled and
// deleted (each with a ConfigMap of its own, and a shared ConfigMap and Secret, so reflection churns
// too), Jobs that run to completion, pods deleted under their ReplicaSet, and single-replica
// StatefulSets that may run on the virtual node or a real node (for the at-most-one count), with short
// not-ready tolerations as in the issue that asked for this suite.
import { AppsV1Api, BatchV1Api, type CoreV1Api, type V1PodSpec } from '@kubernetes/client-node';
import { type Kube, kube } from '../support/kube.ts';
import { createDeployment } from '../support/workloads.ts';

export interface WorkloadOptions {
  readonly hostKubeconfig: string;
  readonly namespace: string;
  readonly remoteName: string;
  readonly nodeName: string;
  /** Live pods on the virtual node above which the churn only scales down or deletes. */
  readonly maxPods?: number;
  readonly random?: () => number;
}

const TOLERATE_VIRTUAL = { key: 'virtual-kubelet.io/provider', operator: 'Exists' };

export class Workload {
  private readonly options: WorkloadOptions;
  private readonly kube: Kube;
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;
  private readonly batch: BatchV1Api;
  private readonly random: () => number;
  private readonly deployments = new Map<string, number>();
  private readonly statefulSets: string[] = [];
  private readonly jobs = new Set<string>();
  private serial = 0;
  /** Operations done, by kind. */
  readonly operations: Record<string, number> = {};

  constructor(options: WorkloadOptions) {
    this.options = options;
    this.kube = kube(options.hostKubeconfig);
    this.core = this.kube.core;
    this.apps = this.kube.kubeConfig.makeApiClient(AppsV1Api);
    this.batch = this.kube.kubeConfig.makeApiClient(BatchV1Api);
    this.random = options.random ?? Math.random;
  }

  async setup(statefulSets = 0): Promise<void> {
    const { namespace } = this.options;
    await this.core.createNamespace({ body: { metadata: { name: namespace } } });
    await this.core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: 'shared' }, data: { mode: 'chaos' } },
    });
    await this.core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'token' }, stringData: { token: 'chaos' } },
    });
    for (let i = 0; i < statefulSets; i++) await this.createStatefulSet(`db-${i}`);
  }

  async cleanup(): Promise<void> {
    await this.core.deleteNamespace({ name: this.options.namespace }).catch(() => {});
  }

  private pinned(extra: Partial<V1PodSpec> & Pick<V1PodSpec, 'containers'>): V1PodSpec {
    return {
      nodeSelector: { 'spillway.dev/cluster': this.options.remoteName },
      tolerations: [TOLERATE_VIRTUAL],
      terminationGracePeriodSeconds: 5,
      ...extra,
    };
  }

  private count(kind: string): void {
    this.operations[kind] = (this.operations[kind] ?? 0) + 1;
  }

  /** A StatefulSet of one replica that prefers the virtual node, may run on a real one, and leaves a not-ready node after 3 s. */
  async createStatefulSet(name: string): Promise<void> {
    const { namespace, nodeName } = this.options;
    await this.apps.createNamespacedStatefulSet({
      namespace,
      body: {
        metadata: { name },
        spec: {
          replicas: 1,
          serviceName: name,
          selector: { matchLabels: { app: name } },
          template: {
            metadata: { labels: { app: name, chaos: 'stateful' } },
            spec: {
              affinity: {
                nodeAffinity: {
                  preferredDuringSchedulingIgnoredDuringExecution: [
                    {
                      weight: 100,
                      preference: {
                        matchExpressions: [
                          { key: 'kubernetes.io/hostname', operator: 'In', values: [nodeName] },
                        ],
                      },
                    },
                  ],
                },
              },
              tolerations: [
                TOLERATE_VIRTUAL,
                {
                  key: 'node.kubernetes.io/not-ready',
                  operator: 'Exists',
                  effect: 'NoExecute',
                  tolerationSeconds: 3,
                },
                {
                  key: 'node.kubernetes.io/unreachable',
                  operator: 'Exists',
                  effect: 'NoExecute',
                  tolerationSeconds: 3,
                },
              ],
              terminationGracePeriodSeconds: 2,
              containers: [{ name: 'db', image: 'db', envFrom: [{ secretRef: { name: 'token' } }] }],
            },
          },
        },
      },
    });
    this.statefulSets.push(name);
    this.count('statefulset-create');
  }

  private async createDeployment(replicas: number): Promise<void> {
    const { namespace } = this.options;
    const name = `web-${this.serial++}`;
    await this.core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: `${name}-config` }, data: { name } },
    });
    await createDeployment(
      this.kube,
      namespace,
      name,
      replicas,
      this.pinned({
        containers: [
          {
            name: 'web',
            image: 'web',
            envFrom: [{ configMapRef: { name: 'shared' } }, { configMapRef: { name: `${name}-config` } }],
          },
        ],
      }),
    );
    this.deployments.set(name, replicas);
    this.count('deployment-create');
  }

  private async scale(name: string, replicas: number): Promise<void> {
    const scale = await this.apps.readNamespacedDeploymentScale({ name, namespace: this.options.namespace });
    await this.apps.replaceNamespacedDeploymentScale({
      name,
      namespace: this.options.namespace,
      body: { ...scale, spec: { replicas } },
    });
    this.deployments.set(name, replicas);
    this.count('deployment-scale');
  }

  private async deleteDeployment(name: string): Promise<void> {
    const { namespace } = this.options;
    await this.apps.deleteNamespacedDeployment({ name, namespace, propagationPolicy: 'Background' });
    await this.core.deleteNamespacedConfigMap({ name: `${name}-config`, namespace }).catch(() => {});
    this.deployments.delete(name);
    this.count('deployment-delete');
  }

  private async createJob(): Promise<void> {
    const name = `job-${this.serial++}`;
    const completions = 3 + Math.floor(this.random() * 4);
    await this.batch.createNamespacedJob({
      namespace: this.options.namespace,
      body: {
        metadata: { name },
        spec: {
          completions,
          parallelism: completions,
          backoffLimit: 0,
          ttlSecondsAfterFinished: 20,
          template: {
            metadata: { labels: { chaos: 'job' } },
            spec: this.pinned({
              restartPolicy: 'Never',
              containers: [{ name: 'job', image: 'job', envFrom: [{ configMapRef: { name: 'shared' } }] }],
            }),
          },
        },
      },
    });
    this.jobs.add(name);
    this.count('job-create');
  }

  /** Deletes a pod behind its controller's back (a ReplicaSet's, or a StatefulSet's, re-created under the same name). */
  private async deletePod(selector: string): Promise<void> {
    const pods = await this.core.listNamespacedPod({
      namespace: this.options.namespace,
      labelSelector: selector,
    });
    const live = pods.items.filter((p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp);
    const pod = live[Math.floor(this.random() * live.length)];
    if (!pod) return;
    await this.core
      .deleteNamespacedPod({ name: pod.metadata?.name ?? '', namespace: this.options.namespace })
      .catch(() => {});
    this.count(selector === 'chaos=stateful' ? 'statefulset-pod-delete' : 'replicaset-pod-delete');
  }

  /** One random operation; with `livePods` at the cap, only ones that shrink. */
  async step(livePods: number): Promise<void> {
    const full = livePods >= (this.options.maxPods ?? 120);
    const names = [...this.deployments.keys()];
    const pick = () => names[Math.floor(this.random() * names.length)] as string;
    const r = this.random();
    if (full) {
      if (names.length > 0 && r < 0.5) await this.deleteDeployment(pick());
      else if (names.length > 0) await this.scale(pick(), 1);
      return;
    }
    if (r < 0.3 && this.deployments.size < 6) await this.createDeployment(3 + Math.floor(this.random() * 4));
    else if (r < 0.55 && names.length > 0) await this.scale(pick(), 1 + Math.floor(this.random() * 8));
    else if (r < 0.65 && names.length > 0) await this.deleteDeployment(pick());
    else if (r < 0.85) await this.createJob();
    else if (r < 0.95) await this.deletePod('pod-template-hash');
    else if (this.statefulSets.length > 0) await this.deletePod('chaos=stateful');
    else await this.createJob();
  }

  /**
   * What the controllers are still doing (empty: every pod they want exists, every Job has all its
   * pods or has finished). Readiness is not asked for: whether a pod is ready is the remote's to say
   * (KWOK leaves pods its node lifecycle marked NotReady unready for a while), and that both clusters
   * agree on it is the observer's check.
   */
  async unsettled(): Promise<string[]> {
    const { namespace } = this.options;
    const [deployments, statefulSets, jobs] = await Promise.all([
      this.apps.listNamespacedDeployment({ namespace }),
      this.apps.listNamespacedStatefulSet({ namespace }),
      this.batch.listNamespacedJob({ namespace }),
    ]);
    const waiting: string[] = [];
    for (const d of deployments.items) {
      const want = d.spec?.replicas ?? 0;
      const s = d.status ?? {};
      const observed = s.observedGeneration === d.metadata?.generation;
      if (!observed || (s.updatedReplicas ?? 0) !== want || (s.replicas ?? 0) !== want) {
        waiting.push(
          `deployment ${d.metadata?.name}: ${s.replicas ?? 0}/${want} pods, ${s.updatedReplicas ?? 0} updated`,
        );
      }
    }
    for (const set of statefulSets.items) {
      if ((set.status?.replicas ?? 0) !== (set.spec?.replicas ?? 0)) {
        waiting.push(
          `statefulset ${set.metadata?.name}: ${set.status?.replicas ?? 0}/${set.spec?.replicas} pods`,
        );
      }
    }
    for (const job of jobs.items) {
      const finished = job.status?.conditions?.some(
        (c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
      );
      const s = job.status ?? {};
      const pods = (s.active ?? 0) + (s.succeeded ?? 0) + (s.failed ?? 0);
      if (!finished && pods < (job.spec?.completions ?? 1)) {
        waiting.push(`job ${job.metadata?.name}: ${pods}/${job.spec?.completions} pods`);
      }
    }
    return waiting;
  }
}
