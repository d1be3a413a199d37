// Downward API fidelity, pure. A delegate is another pod: read through the remote's downward API, its
// name would be right but its namespace (with a prefix), UID, labels (Spillway's marks, no controller
// labels), annotations, node and service account would not. Every field only the host pod knows is
// resolved from the host pod instead: in env as a literal value, in downward-API volumes as an item of
// the pod's own Secret in the remote (kept up to date as the host pod's labels and annotations change,
// which the remote kubelet carries into the files as it does for any Secret). Status and resource
// fields (status.podIP, status.hostIP, limits.cpu…) stay with the remote kubelet, where the pod runs.
import type {
  V1Container,
  V1DownwardAPIVolumeFile,
  V1Pod,
  V1PodSpec,
  V1Volume,
} from '@kubernetes/client-node';

const MAP_FIELD = /^metadata\.(labels|annotations)$/;
const MAP_ENTRY = /^metadata\.(labels|annotations)\['(.*)'\]$/;
const SCALAR_FIELDS = new Set([
  'metadata.name',
  'metadata.namespace',
  'metadata.uid',
  'spec.nodeName',
  'spec.serviceAccountName',
]);

/** Whether a field path is one the delegate would answer with its own, not the host pod's, value. */
export function isHostOnlyField(fieldPath: string): boolean {
  return SCALAR_FIELDS.has(fieldPath) || MAP_FIELD.test(fieldPath) || MAP_ENTRY.test(fieldPath);
}

/** The field's value for the host pod, formatted as a kubelet formats it (undefined: not a host-only field). */
export function hostFieldValue(pod: V1Pod, fieldPath: string): string | undefined {
  const metadata = pod.metadata ?? {};
  switch (fieldPath) {
    case 'metadata.name':
      return metadata.name ?? '';
    case 'metadata.namespace':
      return metadata.namespace ?? '';
    case 'metadata.uid':
      return metadata.uid ?? '';
    case 'spec.nodeName':
      return pod.spec?.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? 'default';
  }
  const map = MAP_FIELD.exec(fieldPath);
  if (map) return formatMap((map[1] === 'labels' ? metadata.labels : metadata.annotations) ?? {});
  const entry = MAP_ENTRY.exec(fieldPath);
  if (entry) {
    const values = (entry[1] === 'labels' ? metadata.labels : metadata.annotations) ?? {};
    return values[entry[2] ?? ''] ?? '';
  }
  return undefined;
}

/** A map as the kubelet writes it into a downward-API file: sorted `key="value"` lines (Go's %q quoting). */
export function formatMap(values: Readonly<Record<string, string>>): string {
  return Object.keys(values)
    .sort()
    .map((key) => `${key}=${goQuote(values[key] ?? '')}`)
    .join('\n');
}

const ESCAPES: Record<string, string> = {
  '"': '\\"',
  '\\': '\\\\',
  '\u0007': '\\a',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\v': '\\v',
};
const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

/** strconv.Quote: printable characters as they are, the rest escaped. */
export function goQuote(text: string): string {
  let out = '"';
  for (const ch of text) {
    const escaped = ESCAPES[ch];
    if (escaped) out += escaped;
    else if (PRINTABLE.test(ch)) out += ch;
    else {
      const code = ch.codePointAt(0) ?? 0;
      if (code < 0x80) out += `\\x${code.toString(16).padStart(2, '0')}`;
      else if (code < 0x10000) out += `\\u${code.toString(16).padStart(4, '0')}`;
      else out += `\\U${code.toString(16).padStart(8, '0')}`;
    }
  }
  return `${out}"`;
}

function allContainers(spec: V1PodSpec): V1Container[] {
  return [
    ...(spec.initContainers ?? []),
    ...spec.containers,
    ...((spec.ephemeralContainers ?? []) as V1Container[]),
  ];
}

/** Env variables read from host-only fields become literal values (the kubelet resolves env once, at start, too). */
export function resolveDownwardEnv(spec: V1PodSpec, hostPod: V1Pod): void {
  for (const container of allContainers(spec)) {
    if (!container.env) continue;
    container.env = container.env.map((variable) => {
      const fieldPath = variable.valueFrom?.fieldRef?.fieldPath;
      const value = fieldPath === undefined ? undefined : hostFieldValue(hostPod, fieldPath);
      return value === undefined ? variable : { name: variable.name, value };
    });
  }
}

type Visit = (item: V1DownwardAPIVolumeFile, key: string) => void;

/**
 * Walks the downward-API items with host-only fields, in a fixed order (so the Secret's keys and the
 * rewritten volumes always agree), skipping volumes `skip` names.
 */
function walk(spec: V1PodSpec | undefined, skip: ReadonlySet<string>, visit: Visit): void {
  let index = 0;
  const items = (list: V1DownwardAPIVolumeFile[] | undefined) => {
    for (const item of list ?? []) {
      if (item.fieldRef && isHostOnlyField(item.fieldRef.fieldPath)) visit(item, `downward-${index++}`);
    }
  };
  for (const volume of spec?.volumes ?? []) {
    if (skip.has(volume.name)) continue;
    items(volume.downwardAPI?.items);
    for (const source of volume.projected?.sources ?? []) items(source.downwardAPI?.items);
  }
}

/** The contents of the pod's Secret for its downward-API volumes: key → file content. */
export function downwardData(hostPod: V1Pod, skip: ReadonlySet<string> = new Set()): Record<string, string> {
  const data: Record<string, string> = {};
  walk(hostPod.spec, skip, (item, key) => {
    data[key] = hostFieldValue(hostPod, item.fieldRef?.fieldPath ?? '') ?? '';
  });
  return data;
}

/**
 * Rewrites the downward-API volumes so their host-only items come from the pod's Secret (the other
 * items stay with the remote kubelet); a plain downwardAPI volume becomes a projected one.
 */
export function projectDownwardFrom(spec: V1PodSpec, secretName: string, skip: ReadonlySet<string>): void {
  const keys = new Map<V1DownwardAPIVolumeFile, string>();
  walk(spec, skip, (item, key) => keys.set(item, key));
  if (keys.size === 0) return;
  const split = (items: V1DownwardAPIVolumeFile[]) => {
    const fromSecret = items.filter((i) => keys.has(i));
    const remaining = items.filter((i) => !keys.has(i));
    return [
      ...(fromSecret.length > 0
        ? [
            {
              secret: {
                name: secretName,
                items: fromSecret.map((i) => ({
                  key: keys.get(i) as string,
                  path: i.path,
                  ...(i.mode !== undefined ? { mode: i.mode } : {}),
                })),
              },
            },
          ]
        : []),
      ...(remaining.length > 0 ? [{ downwardAPI: { items: remaining } }] : []),
    ];
  };
  spec.volumes = spec.volumes?.map((volume): V1Volume => {
    if (skip.has(volume.name)) return volume;
    if (volume.downwardAPI?.items?.some((i) => keys.has(i))) {
      const { downwardAPI, ...rest } = volume;
      return {
        ...rest,
        projected: {
          ...(downwardAPI.defaultMode !== undefined ? { defaultMode: downwardAPI.defaultMode } : {}),
          sources: split(downwardAPI.items ?? []),
        },
      };
    }
    if (volume.projected?.sources?.some((s) => s.downwardAPI?.items?.some((i) => keys.has(i)))) {
      return {
        ...volume,
        projected: {
          ...volume.projected,
          sources: volume.projected.sources.flatMap((source) =>
            source.downwardAPI ? split(source.downwardAPI.items ?? []) : [source],
          ),
        },
      };
    }
    return volume;
  });
}
