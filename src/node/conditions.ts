// The virtual node's conditions, each with an honest reason and message about the remote cluster.
// Pure: times come in as arguments.
import type { RemoteNode } from './capacity.ts';

export type RemoteReachability =
  | { readonly state: 'reachable' }
  /** Not reached yet since start, still within the grace period. */
  | { readonly state: 'connecting'; readonly error?: string }
  | { readonly state: 'unreachable'; readonly since: string; readonly error?: string };

export interface NodeCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastHeartbeatTime?: string;
  lastTransitionTime?: string;
}

export const REASON_REMOTE_UNREACHABLE = 'RemoteClusterUnreachable';

const pressures: { type: string; remoteCondition: string; noun: string; okReason: string }[] = [
  {
    type: 'MemoryPressure',
    remoteCondition: 'MemoryPressure',
    noun: 'memory',
    okReason: 'RemoteHasSufficientMemory',
  },
  {
    type: 'DiskPressure',
    remoteCondition: 'DiskPressure',
    noun: 'disk',
    okReason: 'RemoteHasNoDiskPressure',
  },
  { type: 'PIDPressure', remoteCondition: 'PIDPressure', noun: 'PID', okReason: 'RemoteHasSufficientPID' },
];

export interface ConditionInputs {
  readonly remoteName: string;
  readonly server: string;
  readonly reachability: RemoteReachability;
  readonly allNodes: readonly RemoteNode[];
  readonly schedulableNodes: readonly RemoteNode[];
}

/** Conditions without times; {@link stampConditions} adds heartbeat and transition times. */
export function computeConditions(inputs: ConditionInputs): NodeCondition[] {
  const { remoteName, server, reachability, allNodes, schedulableNodes } = inputs;
  if (reachability.state !== 'reachable') {
    const why = reachability.error ? `: ${reachability.error}` : '';
    const ready: NodeCondition =
      reachability.state === 'connecting'
        ? {
            type: 'Ready',
            status: 'False',
            reason: 'RemoteClusterConnecting',
            message: `connecting to remote cluster ${remoteName} at ${server}${why}`,
          }
        : {
            type: 'Ready',
            status: 'False',
            reason: REASON_REMOTE_UNREACHABLE,
            // A fixed "since" keeps the message stable, so an outage causes one status write, not one per probe.
            message: `remote cluster ${remoteName} at ${server} unreachable since ${reachability.since}${why}`,
          };
    const unknown = (type: string): NodeCondition => ({
      type,
      status: 'Unknown',
      reason: REASON_REMOTE_UNREACHABLE,
      message: `remote cluster ${remoteName} cannot be asked`,
    });
    return [ready, ...pressures.map((p) => unknown(p.type)), unknown('NetworkUnavailable')];
  }

  const count = schedulableNodes.length;
  const ready: NodeCondition =
    count > 0
      ? {
          type: 'Ready',
          status: 'True',
          reason: 'RemoteClusterReady',
          message: `remote cluster ${remoteName} reachable; ${count} of ${allNodes.length} nodes schedulable`,
        }
      : {
          type: 'Ready',
          status: 'False',
          reason: 'NoSchedulableRemoteNodes',
          message: `remote cluster ${remoteName} reachable but none of its ${allNodes.length} nodes is Ready and schedulable`,
        };
  const conditions = [ready];
  for (const pressure of pressures) {
    const under = schedulableNodes.filter((n) => n.conditions[pressure.remoteCondition] === 'True').length;
    const all = count > 0 && under === count;
    conditions.push({
      type: pressure.type,
      status: all ? 'True' : 'False',
      reason: all ? `RemoteNodesUnder${pressure.type}` : pressure.okReason,
      message: `${under} of ${count} schedulable remote nodes report ${pressure.noun} pressure`,
    });
  }
  const noNetwork = schedulableNodes.filter((n) => n.conditions.NetworkUnavailable === 'True').length;
  const networkDown = count > 0 && noNetwork === count;
  conditions.push({
    type: 'NetworkUnavailable',
    status: networkDown ? 'True' : 'False',
    reason: networkDown ? 'RemoteNetworkUnavailable' : 'RemoteNetworkAvailable',
    message: `${noNetwork} of ${count} schedulable remote nodes report their network unavailable`,
  });
  return conditions;
}

/**
 * Adds times: the transition time is kept from the previous condition of the same type while its
 * status is unchanged; the heartbeat time is now.
 */
export function stampConditions(
  conditions: readonly NodeCondition[],
  previous: readonly NodeCondition[] | undefined,
  now: string,
): NodeCondition[] {
  return conditions.map((condition) => {
    const before = previous?.find((p) => p.type === condition.type);
    const lastTransitionTime =
      before && before.status === condition.status && before.lastTransitionTime
        ? before.lastTransitionTime
        : now;
    return { ...condition, lastHeartbeatTime: now, lastTransitionTime };
  });
}

/** Equal but for heartbeat times: the comparison that decides whether status needs writing. */
export function conditionsEqual(
  a: readonly NodeCondition[] | undefined,
  b: readonly NodeCondition[],
): boolean {
  if (!a || a.length !== b.length) return false;
  return b.every((condition) => {
    const other = a.find((c) => c.type === condition.type);
    return (
      other !== undefined &&
      other.status === condition.status &&
      other.reason === condition.reason &&
      other.message === condition.message
    );
  });
}
