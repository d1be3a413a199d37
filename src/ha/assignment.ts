// Which replica should own which remote: balanced (loads differ by at most one),
// stable (a remote stays with its live holder while that holder is within its share) and the same on
// every replica that sees the same members, remotes and holders. Remotes without a holder in its share
// go to the member with the highest rendezvous score among those with room. Pure.
import { createHash } from 'node:crypto';

/** Rendezvous (highest-random-weight) score of a member for a remote. */
function score(remote: string, member: string): bigint {
  return createHash('sha256').update(remote).update('\0').update(member).digest().readBigUInt64BE(0);
}

/**
 * @param remotes  every known remote
 * @param members  the live replicas
 * @param holders  remote → replica currently holding its Lease (live or not)
 * @returns remote → the replica that should own it (every remote, when there is any member)
 */
export function assignRemotes(
  remotes: readonly string[],
  members: readonly string[],
  holders: ReadonlyMap<string, string> = new Map(),
): Map<string, string> {
  const assignment = new Map<string, string>();
  const live = [...new Set(members)].sort();
  if (live.length === 0) return assignment;
  const names = [...new Set(remotes)].sort();
  // Loads differ by at most one: every member may own `base`, and `extra` of them one more, those
  // first that already hold more (so a balanced state is kept as it is).
  const base = Math.floor(names.length / live.length);
  const extra = names.length % live.length;
  const holding = new Map(live.map((member) => [member, 0]));
  for (const remote of names) {
    const holder = holders.get(remote);
    if (holder !== undefined && holding.has(holder)) holding.set(holder, (holding.get(holder) ?? 0) + 1);
  }
  const byHolding = [...live].sort(
    (a, b) => (holding.get(b) ?? 0) - (holding.get(a) ?? 0) || a.localeCompare(b),
  );
  const capacity = new Map(byHolding.map((member, index) => [member, base + (index < extra ? 1 : 0)]));
  const load = new Map(live.map((member) => [member, 0]));
  const hasRoom = (member: string) => (load.get(member) ?? 0) < (capacity.get(member) ?? 0);
  for (const remote of names) {
    const holder = holders.get(remote);
    if (holder !== undefined && load.has(holder) && hasRoom(holder)) {
      assignment.set(remote, holder);
      load.set(holder, (load.get(holder) ?? 0) + 1);
    }
  }
  for (const remote of names) {
    if (assignment.has(remote)) continue;
    const ranked = [...live].sort((a, b) => {
      const difference = score(remote, b) - score(remote, a);
      return difference > 0n ? 1 : difference < 0n ? -1 : a.localeCompare(b);
    });
    const member = ranked.find(hasRoom) as string;
    assignment.set(remote, member);
    load.set(member, (load.get(member) ?? 0) + 1);
  }
  return assignment;
}
