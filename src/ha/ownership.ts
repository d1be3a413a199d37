// High availability and sharding: every replica knows every remote (the catalog: the configuration
// file and discovered Secrets) but runs only those whose Lease it holds. Each tick, a replica renews
// its Leases, works out from the replica Leases who is alive and from assignRemotes who should own
// what, takes free Leases of remotes assigned to it, and hands over (stops without draining, then
// releases) a remote assigned to another live replica. A replica that cannot renew stops writing at
// its renew deadline (fencing); the others take its remotes once its Leases expire. The leader Lease
// picks one replica for shared work.
import type { Logger } from 'pino';
import type { HaConfig } from '../config.ts';
import type { ClusterClient } from '../kube/client.ts';
import { messageOf } from '../kube/errors.ts';
import { leaseRenewed, leaseRenewFailed } from '../metrics/instruments.ts';
import { counter } from '../metrics/registry.ts';
import type { RemoteRegistry, Retirement } from '../remotes/registry.ts';
import type { RemoteSpec } from '../remotes/remote.ts';
import { assignRemotes } from './assignment.ts';
import { Fence } from './fence.ts';
import {
  ANNOTATION_KUBELET_ENDPOINT,
  ANNOTATION_LEASE_NODE,
  ANNOTATION_LEASE_REMOTE,
  LEADER_LEASE,
  LeaseBook,
  type LeaseRole,
  remoteLeaseName,
  replicaLeaseName,
} from './leases.ts';
import { collectStaleLeases } from './stale.ts';

const acquisitions = counter(
  'spillway_ha_lease_acquisitions_total',
  'Remote Leases this replica took: free (never held or released) or takeover (expired holder).',
  ['kind'],
);
const losses = counter(
  'spillway_ha_lease_losses_total',
  'Remote Leases this replica gave up: handover (rebalancing), lost (renewal failed or taken), removed.',
  ['reason'],
);

export interface OwnershipOptions {
  readonly host: ClusterClient;
  readonly namespace: string;
  readonly hostClusterName: string;
  readonly ha: HaConfig;
  readonly registry: RemoteRegistry;
  /** Where this replica's kubelet API listens (shown by `spillway status`). */
  readonly kubeletEndpoint: string;
  /** Whether the catalog holds every remote (discovery has listed the Secrets): stale Leases are collected only then. */
  readonly catalogComplete: () => boolean;
  /** Called when this replica becomes the leader; the signal aborts when it stops being one. */
  readonly onLeader?: (signal: AbortSignal) => void;
  readonly logger: Logger;
}

interface Owned {
  readonly fence: Fence;
}

export class RemoteOwnership {
  private readonly options: OwnershipOptions;
  readonly book: LeaseBook;
  private readonly catalog = new Map<string, RemoteSpec>();
  private readonly owned = new Map<string, Owned>();
  private readonly busy = new Map<string, Promise<void>>();
  /** performance.now() since when each replica has been seen alive without a gap. */
  private readonly liveSince = new Map<string, number>();
  private leader: { fence: Fence; controller: AbortController } | undefined;
  private readonly logger: Logger;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private startedAt = 0;
  private ticks = 0;

  constructor(options: OwnershipOptions) {
    const { ha } = options;
    if (!(ha.renewDeadlineSeconds < ha.leaseDurationSeconds))
      throw new Error('ha: renew deadline must be below the lease duration');
    this.options = options;
    this.logger = options.logger.child({ component: 'ha', replica: ha.identity });
    this.book = new LeaseBook({
      host: options.host,
      namespace: options.namespace,
      identity: ha.identity,
      durationSeconds: ha.leaseDurationSeconds,
      logger: this.logger,
    });
  }

  get identity(): string {
    return this.options.ha.identity;
  }

  get isLeader(): boolean {
    return this.leader?.fence.valid() ?? false;
  }

  /** Every remote known to the replicas, owned here or not. */
  specs(): RemoteSpec[] {
    return [...this.catalog.values()];
  }

  /** Names of the remotes this replica runs now. */
  ownedRemotes(): string[] {
    return [...this.owned.keys()];
  }

  private get renewDeadlineMs(): number {
    return this.options.ha.renewDeadlineSeconds * 1000;
  }

  private get durationMs(): number {
    return this.options.ha.leaseDurationSeconds * 1000;
  }

  /** Serialises work on one remote (start, stop, drain) without blocking the others or the renewals. */
  private withRemote(name: string, work: () => Promise<void>): Promise<void> {
    const previous = this.busy.get(name) ?? Promise.resolve();
    const next = previous
      .then(work)
      .catch((error: unknown) =>
        this.logger.error({ remote: name, err: messageOf(error) }, 'remote ownership change failed'),
      )
      .finally(() => {
        if (this.busy.get(name) === next) this.busy.delete(name);
      });
    this.busy.set(name, next);
    return next;
  }

  /** A remote appeared or changed: run (or update) it when owned, else just remember it. */
  async upsert(spec: RemoteSpec): Promise<void> {
    this.catalog.set(spec.name, spec);
    await this.withRemote(spec.name, async () => {
      const owned = this.owned.get(spec.name);
      if (owned && !owned.fence.lost) await this.options.registry.upsert(spec, owned.fence);
    });
  }

  /**
   * A remote leaves service: only its owner drains (or force-removes) it, through the registry, then
   * gives up its Lease and deletes it. Elsewhere this answers false and the caller asks again, so the
   * Secret's finalizer goes only once the owner is done (a drain cut short by a takeover resumes in the
   * new owner). A remote that no replica can own (not in the catalog: a force without a usable spec)
   * is force-removed by the leader.
   */
  async retire(name: string, how: Retirement): Promise<boolean> {
    if (how.spec) this.catalog.set(name, how.spec);
    let done = false;
    await this.withRemote(name, async () => {
      if (!this.catalog.has(name)) {
        if (how.force && this.isLeader) done = await this.options.registry.retire(name, how);
        return;
      }
      const owned = this.owned.get(name);
      if (!owned || owned.fence.lost) {
        // Its Secret is gone (the owner finished, or it was deleted without our finalizer): nothing is
        // left to own, and a Lease taken for it now would start it again.
        if (!how.spec && !how.force) this.catalog.delete(name);
        return;
      }
      done = await this.options.registry.retire(name, how, owned.fence);
      if (!done) return;
      this.catalog.delete(name);
      this.owned.delete(name);
      owned.fence.lose('remote removed');
      losses.labels('removed').inc();
      await this.book.delete(remoteLeaseName(name));
    });
    return done;
  }

  start(signal: AbortSignal): void {
    this.book.start(signal);
    this.startedAt = performance.now();
    const loop = async () => {
      if (this.stopped || signal.aborted) return;
      await this.tick().catch((error: unknown) =>
        this.logger.error({ err: messageOf(error) }, 'high-availability tick failed'),
      );
      if (!this.stopped && !signal.aborted) {
        this.timer = setTimeout(loop, this.options.ha.retryPeriodSeconds * 1000);
        this.timer.unref();
      }
    };
    void this.book.ready.then(loop);
  }

  private async renewOne(name: string, kind: LeaseRole, fence: Fence): Promise<void> {
    const started = performance.now();
    try {
      if (await this.book.renew(name)) {
        fence.extend(started, this.renewDeadlineMs);
        leaseRenewed(kind, (performance.now() - started) / 1000);
      } else {
        fence.lose('another replica holds it');
      }
    } catch (error) {
      leaseRenewFailed(kind);
      this.logger.warn({ lease: name, err: messageOf(error) }, 'lease renewal failed');
    }
  }

  private async tick(): Promise<void> {
    this.ticks++;
    const { ha, kubeletEndpoint } = this.options;
    const replicaLease = replicaLeaseName(ha.identity);
    // Presence: our replica Lease (created on the first tick, renewed after).
    const renewals: Promise<unknown>[] = [
      this.book.renew(replicaLease).then(async (renewed) => {
        if (!renewed)
          await this.book.acquire(replicaLease, 'replica', {
            [ANNOTATION_KUBELET_ENDPOINT]: kubeletEndpoint,
          });
      }),
    ];
    for (const [name, owned] of this.owned) {
      if (!owned.fence.lost) renewals.push(this.renewOne(remoteLeaseName(name), 'remote', owned.fence));
    }
    if (this.leader) renewals.push(this.renewOne(LEADER_LEASE, 'leader', this.leader.fence));
    await Promise.allSettled(renewals);

    const now = performance.now();
    // Whatever could not be renewed in time is given up without a write: its successor waits the expiry.
    for (const [name, owned] of this.owned) {
      if (!owned.fence.valid(now)) this.lose(name, 'lost');
    }
    if (this.leader && !this.leader.fence.valid(now)) {
      this.logger.warn('no longer the leader');
      this.leader.fence.lose('renewal failed');
      this.leader.controller.abort();
      this.leader = undefined;
    }
    // Decisions start once a first round of replica Leases has been seen, so replicas starting together
    // do not all grab everything first and hand most of it back afterwards.
    if (now - this.startedAt < ha.retryPeriodSeconds * 1000) return;
    const members = this.liveMembers(now);
    const holders = new Map<string, string>();
    for (const name of this.catalog.keys()) {
      const holder = this.owned.has(name) ? ha.identity : this.book.holder(remoteLeaseName(name));
      if (holder) holders.set(name, holder);
    }
    const assignment = assignRemotes([...this.catalog.keys()], members, holders);
    let handedOver = false;
    for (const [name, spec] of this.catalog) {
      if (this.busy.has(name)) continue;
      const target = assignment.get(name);
      if (this.owned.has(name)) {
        // Hand over one remote per tick, and only to a replica that has been alive a while.
        const settled = target && now - (this.liveSince.get(target) ?? now) >= this.durationMs;
        if (!handedOver && target && target !== ha.identity && settled) {
          handedOver = true;
          void this.handOver(name);
        }
        continue;
      }
      const freeFor = this.book.freeFor(remoteLeaseName(name), now);
      if (freeFor === undefined) continue;
      // The assigned replica takes it; anyone does if it stays free (replicas that disagree on members).
      if (target === ha.identity || freeFor > this.durationMs) void this.acquire(spec, freeFor);
    }
    if (!this.leader && this.book.freeFor(LEADER_LEASE, now) !== undefined) await this.becomeLeader(now);
    if (this.leader && this.ticks % 10 === 0 && this.options.catalogComplete()) {
      await collectStaleLeases({
        book: this.book,
        host: this.options.host,
        hostClusterName: this.options.hostClusterName,
        known: new Set(this.catalog.keys()),
        durationMs: this.durationMs,
        logger: this.logger,
      }).catch((error: unknown) =>
        this.logger.warn({ err: messageOf(error) }, 'collecting stale Leases failed'),
      );
    }
  }

  private liveMembers(now: number): string[] {
    const live = new Set([this.options.ha.identity]);
    for (const lease of this.book.list('replica')) {
      const holder = lease.spec?.holderIdentity;
      if (holder && this.book.freeFor(lease.metadata?.name ?? '', now) === undefined) live.add(holder);
    }
    for (const member of [...this.liveSince.keys()]) if (!live.has(member)) this.liveSince.delete(member);
    for (const member of live) if (!this.liveSince.has(member)) this.liveSince.set(member, now);
    return [...live];
  }

  private acquire(spec: RemoteSpec, freeFor: number): Promise<void> {
    return this.withRemote(spec.name, async () => {
      if (this.stopped || this.owned.has(spec.name) || this.catalog.get(spec.name) !== spec) return;
      const lease = remoteLeaseName(spec.name);
      const previous = this.book.lease(lease)?.spec?.holderIdentity;
      const started = performance.now();
      const acquired = await this.book.acquire(lease, 'remote', {
        [ANNOTATION_LEASE_REMOTE]: spec.name,
        [ANNOTATION_LEASE_NODE]: spec.nodeName,
      });
      if (!acquired) return;
      const fence = new Fence(spec.name, this.renewDeadlineMs, started);
      this.owned.set(spec.name, { fence });
      acquisitions.labels(previous ? 'takeover' : 'free').inc();
      this.logger.info(
        {
          remote: spec.name,
          previousHolder: previous || undefined,
          freeForMs: Number.isFinite(freeFor) ? Math.round(freeFor) : undefined,
        },
        'took over remote',
      );
      try {
        await this.options.registry.upsert(spec, fence);
      } catch (error) {
        this.owned.delete(spec.name);
        fence.lose('could not start');
        await this.book.release(lease);
        throw error;
      }
    });
  }

  /** Stops the remote without draining it (its pods keep running) and releases the Lease at once. */
  private handOver(name: string): Promise<void> {
    return this.withRemote(name, async () => {
      const owned = this.owned.get(name);
      if (!owned) return;
      this.logger.info({ remote: name }, 'handing remote over to another replica');
      owned.fence.lose('handed over');
      this.owned.delete(name);
      losses.labels('handover').inc();
      await this.options.registry.stop(name);
      await this.book.release(remoteLeaseName(name));
    });
  }

  private lose(name: string, reason: 'lost'): void {
    const owned = this.owned.get(name);
    if (!owned) return;
    this.logger.warn({ remote: name }, 'lost the Lease of remote; stopping it without draining');
    owned.fence.lose('renewal failed or taken over');
    this.owned.delete(name);
    losses.labels(reason).inc();
    void this.withRemote(name, () => this.options.registry.stop(name));
  }

  private async becomeLeader(now: number): Promise<void> {
    if (!(await this.book.acquire(LEADER_LEASE, 'leader'))) return;
    const fence = new Fence(LEADER_LEASE, this.renewDeadlineMs, now);
    const controller = new AbortController();
    fence.signal.addEventListener('abort', () => controller.abort(), { once: true });
    this.leader = { fence, controller };
    this.logger.info('became the leader (shared work)');
    this.options.onLeader?.(controller.signal);
  }

  /** Stops every owned remote (no drain, nodes kept) and releases the Leases so others take over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const names = [...this.owned.keys()];
    await Promise.all(
      names.map((name) =>
        this.withRemote(name, async () => {
          const owned = this.owned.get(name);
          if (!owned) return;
          owned.fence.lose('shutting down');
          this.owned.delete(name);
          await this.options.registry.stop(name);
          await this.book.release(remoteLeaseName(name));
        }),
      ),
    );
    if (this.leader) {
      this.leader.controller.abort();
      this.leader = undefined;
      await this.book.release(LEADER_LEASE).catch(() => {});
    }
    await this.book.delete(replicaLeaseName(this.options.ha.identity)).catch(() => {});
  }
}
