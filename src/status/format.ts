// `spillway status` for a person: one line per remote, then what is wrong with those that are not
// well, and who runs what. Pure.
import { PHASES, type RemoteStatus, type StatusReport } from './model.ts';

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0))) ?? [];
  return rows
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const used = (remote: RemoteStatus, resource: string) =>
  `${remote.requested[resource] ?? '0'}/${remote.allocatable[resource] ?? '?'}`;

function age(iso: string | null, now: number): string {
  if (!iso) return '';
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 120) return `${seconds}s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m ago`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)}h ago`;
  return `${Math.round(seconds / 86400)}d ago`;
}

export function formatStatus(report: StatusReport, now = Date.now()): string {
  const out: string[] = [];
  const leader = report.replicas.find((r) => r.leader);
  out.push(
    `Host cluster ${report.hostClusterName}, namespace ${report.namespace}: ${report.remotes.length} remote cluster(s)` +
      (report.highAvailability
        ? `, ${report.replicas.filter((r) => r.live).length} live replica(s)${leader ? `, leader ${leader.identity}` : ''}`
        : ''),
  );
  if (report.remotes.length === 0) {
    out.push('', 'No remote clusters. Add one with: spillway join NAME --kubeconfig REMOTE_ADMIN_KUBECONFIG');
    return `${out.join('\n')}\n`;
  }
  const header = [
    'REMOTE',
    'NODE',
    'READY',
    'CPU',
    'MEMORY',
    'PODS',
    ...PHASES.map((p) => p.toUpperCase()),
    'OWNER',
  ];
  const rows = report.remotes.map((remote) => [
    remote.name,
    remote.node,
    remote.ready ? 'True' : `False (${remote.reason})`,
    used(remote, 'cpu'),
    used(remote, 'memory'),
    used(remote, 'pods'),
    ...PHASES.map((phase) => String(remote.pods[phase])),
    remote.owner
      ? `${remote.owner.replica}${remote.owner.live ? '' : ' (expired)'}`
      : remote.kubeletEndpoint
        ? '-'
        : '',
  ]);
  out.push('', table([header, ...rows]));
  const troubled = report.remotes.filter((r) => r.lastError || !r.ready);
  if (troubled.length > 0) {
    out.push('', 'Last errors:');
    for (const remote of troubled) {
      const error = remote.lastError ?? { reason: remote.reason, message: remote.message, time: null };
      out.push(
        `  ${remote.name}: ${error.reason}: ${error.message}${error.time ? ` (${age(error.time, now)})` : ''}`,
      );
    }
  }
  const expiring = report.remotes.filter((r) => r.credentialExpires);
  if (expiring.length > 0) {
    out.push('', 'Credentials:');
    for (const remote of expiring) {
      const left = Date.parse(remote.credentialExpires as string) - now;
      const days = Math.floor(left / 86_400_000);
      const when =
        left <= 0
          ? 'EXPIRED'
          : days >= 1
            ? `in ${days}d`
            : `in ${Math.max(1, Math.round(left / 3_600_000))}h`;
      out.push(
        `  ${remote.name}: expires ${remote.credentialExpires} (${when}); renew with: spillway join ${remote.name} --kubeconfig … --rotate`,
      );
    }
  }
  if (report.replicas.length > 0) {
    out.push(
      '',
      table([
        ['REPLICA', 'KUBELET', 'LIVE', 'LEADER', 'REMOTES'],
        ...report.replicas.map((r) => [
          r.identity,
          r.kubeletEndpoint ?? '',
          String(r.live),
          r.leader ? 'yes' : '',
          String(r.remotes),
        ]),
      ]),
    );
  }
  return `${out.join('\n')}\n`;
}
