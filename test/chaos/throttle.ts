// Real 429s from a remote API server: API Priority and Fairness configured to give Spillway's own
// remote identity (its ServiceAccount) a priority level without seats of its own and nothing to
// borrow, rejecting everything it asks while the storm lasts. Nothing is faked: the remote API server
// answers 429 with Retry-After, and its apiserver_flowcontrol_rejected_requests_total metric counts them.
import { stringify } from 'yaml';
import { kubectl } from '../cluster/kubectl.ts';

export const THROTTLE_NAME = 'spillway-chaos-throttle';

export class Throttle {
  private readonly kubectlBinary: string;
  private readonly adminKubeconfig: string;

  constructor(kubectlBinary: string, adminKubeconfig: string) {
    this.kubectlBinary = kubectlBinary;
    this.adminKubeconfig = adminKubeconfig;
  }

  private manifests(): string {
    const priorityLevel = {
      apiVersion: 'flowcontrol.apiserver.k8s.io/v1',
      kind: 'PriorityLevelConfiguration',
      metadata: { name: THROTTLE_NAME },
      spec: {
        type: 'Limited',
        limited: {
          nominalConcurrencyShares: 0,
          lendablePercent: 0,
          borrowingLimitPercent: 0,
          limitResponse: { type: 'Reject' },
        },
      },
    };
    const flowSchema = {
      apiVersion: 'flowcontrol.apiserver.k8s.io/v1',
      kind: 'FlowSchema',
      metadata: { name: THROTTLE_NAME },
      spec: {
        priorityLevelConfiguration: { name: THROTTLE_NAME },
        // Ahead of the built-in service-accounts schema (9000).
        matchingPrecedence: 500,
        distinguisherMethod: { type: 'ByUser' },
        rules: [
          {
            subjects: [
              { kind: 'ServiceAccount', serviceAccount: { name: 'spillway', namespace: 'spillway-system' } },
            ],
            resourceRules: [
              { verbs: ['*'], apiGroups: ['*'], resources: ['*'], namespaces: ['*'], clusterScope: true },
            ],
            nonResourceRules: [{ verbs: ['*'], nonResourceURLs: ['*'] }],
          },
        ],
      },
    };
    return [priorityLevel, flowSchema].map((o) => stringify(o)).join('---\n');
  }

  async on(): Promise<void> {
    await kubectl(this.kubectlBinary, this.adminKubeconfig, ['apply', '-f', '-'], {
      input: this.manifests(),
    });
  }

  async off(): Promise<void> {
    await kubectl(this.kubectlBinary, this.adminKubeconfig, ['delete', '--ignore-not-found', '-f', '-'], {
      input: this.manifests(),
    });
  }

  /** Requests of this flow schema the remote API server rejected (429) and let through so far (its own metrics). */
  async requests(): Promise<{ rejected: number; dispatched: number }> {
    const { stdout } = await kubectl(this.kubectlBinary, this.adminKubeconfig, ['get', '--raw', '/metrics']);
    const sum = (metric: string) =>
      stdout
        .split('\n')
        .filter((line) => line.startsWith(`${metric}{`) && line.includes(`flow_schema="${THROTTLE_NAME}"`))
        .reduce((total, line) => total + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
    return {
      rejected: sum('apiserver_flowcontrol_rejected_requests_total'),
      dispatched: sum('apiserver_flowcontrol_dispatched_requests_total'),
    };
  }
}
