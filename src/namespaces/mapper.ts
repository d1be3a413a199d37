// One virtual node's view of the namespace policy: which remote namespace each host namespace's pods go
// to, and whether they may come here at all. Recomputed only when a host namespace's annotations change
// or a host namespace starts or stops having delegates in some remote namespace; conflicts are reported
// once per change as a Warning event on the host namespace.
import type { EventRecorder } from '../kube/events.ts';
import type { WorkloadVerdict } from '../pods/plan-workload.ts';
import { Warnings } from '../workloads.ts';
import type { HostNamespaces } from './host-namespaces.ts';
import {
  type Mapping,
  type MappingPolicy,
  remoteRefusal,
  requestedMapping,
  resolveMappings,
} from './policy.ts';

export interface NamespaceMapperOptions {
  readonly namespaces: HostNamespaces;
  readonly policy: MappingPolicy;
  readonly remoteName: string;
  readonly nodeName: string;
  /** Where this node's delegates of a host namespace are now (remote namespace → how many). */
  readonly inUse: (hostNamespace: string) => ReadonlyMap<string, number>;
  readonly events: EventRecorder;
  /** The mapping of some namespaces changed: their pods are looked at again. */
  readonly onChange: (hostNamespaces: readonly string[]) => void;
}

export class NamespaceMapper {
  private readonly options: NamespaceMapperOptions;
  private mappings: Map<string, Mapping> | undefined;
  private readonly warnings: Warnings;

  constructor(options: NamespaceMapperOptions) {
    this.options = options;
    this.warnings = new Warnings(options.events);
  }

  /** Subscribes to host namespace changes; returns the unsubscribe function. */
  start(): () => void {
    return this.options.namespaces.subscribe((namespace) => this.changed([namespace.metadata.name]));
  }

  /** Something a mapping depends on changed (annotations, or where delegates are). */
  changed(hostNamespaces: readonly string[]): void {
    const before = this.mappings;
    this.mappings = undefined;
    const after = this.all();
    const moved = new Set(hostNamespaces);
    if (before) {
      for (const [name, mapping] of after)
        if (JSON.stringify(before.get(name)) !== JSON.stringify(mapping)) moved.add(name);
    }
    this.report(after);
    if (moved.size > 0) this.options.onChange([...moved]);
  }

  private all(): Map<string, Mapping> {
    if (!this.mappings) {
      this.mappings = resolveMappings(this.options.namespaces.list(), this.options.policy, (name) =>
        single(this.options.inUse(name)),
      );
    }
    return this.mappings;
  }

  /** The remote namespace for a host namespace's new delegates (a refusal when it has none to use). */
  mapping(hostNamespace: string): Mapping {
    const known = this.all().get(hostNamespace);
    if (known) return known;
    // Not listed (yet): as its annotations would say.
    const used = single(this.options.inUse(hostNamespace));
    return used
      ? { remote: used }
      : requestedMapping(this.options.namespaces.get(hostNamespace), hostNamespace, this.options.policy);
  }

  /** The remote namespace's name, for objects that must have one (the prefix default when refused). */
  remoteNamespace(hostNamespace: string): string {
    const mapping = this.mapping(hostNamespace);
    return 'remote' in mapping ? mapping.remote : `${this.options.policy.prefix}${hostNamespace}`;
  }

  /** Why a new pod of this namespace may not get a delegate here. */
  verdict(hostNamespace: string): WorkloadVerdict | undefined {
    const allowed = remoteRefusal(
      this.options.namespaces.get(hostNamespace),
      hostNamespace,
      this.options.remoteName,
    );
    if (allowed) return { ...allowed, outcome: 'fail' };
    const mapping = this.mapping(hostNamespace);
    if ('refusal' in mapping) return { ...mapping.refusal, outcome: 'wait', retryAfterMs: 60_000 };
    return undefined;
  }

  private report(mappings: Map<string, Mapping>): void {
    for (const [name, mapping] of mappings) {
      const target = { kind: 'Namespace', name, uid: this.options.namespaces.get(name)?.metadata.uid };
      if (!('refusal' in mapping)) {
        this.warnings.clear(target);
        continue;
      }
      const { reason, message } = mapping.refusal;
      this.warnings.report(
        target,
        reason,
        `${message} (virtual node ${this.options.nodeName}); its pods are not offloaded there`,
      );
    }
  }
}

/** The one remote namespace holding delegates, if exactly one does. */
function single(counts: ReadonlyMap<string, number>): string | undefined {
  return counts.size === 1
    ? [...counts.keys()][0]
    : counts.size > 1
      ? [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0]
      : undefined;
}
