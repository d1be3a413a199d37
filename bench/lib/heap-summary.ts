// What a V8 heap snapshot holds, summed by kind of object: self sizes by node type and by constructor
// (or string/code category), the biggest first. Enough to tell cached pods from compiled code from
// module source text without opening DevTools.
import { readFile } from 'node:fs/promises';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

export interface HeapSummary {
  readonly totalMiB: number;
  readonly byType: Record<string, number>;
  readonly top: { name: string; count: number; MiB: number }[];
}

export async function summarizeHeapSnapshot(file: string, topN = 25): Promise<HeapSummary> {
  const snapshot = JSON.parse(await readFile(file, 'utf8')) as Snapshot;
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const byType = new Map<string, number>();
  const byName = new Map<string, { count: number; bytes: number }>();
  let total = 0;
  for (let i = 0; i < snapshot.nodes.length; i += width) {
    const type = types[snapshot.nodes[i + typeAt] as number] ?? '?';
    const size = snapshot.nodes[i + sizeAt] as number;
    total += size;
    byType.set(type, (byType.get(type) ?? 0) + size);
    const raw = snapshot.strings[snapshot.nodes[i + nameAt] as number] ?? '';
    const name =
      type === 'object' || type === 'closure' || type === 'native'
        ? `${type}:${raw}`
        : type === 'code'
          ? `code:${raw.slice(0, 40)}`
          : type;
    const entry = byName.get(name) ?? { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += size;
    byName.set(name, entry);
  }
  const mib = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;
  return {
    totalMiB: mib(total),
    byType: Object.fromEntries([...byType].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, mib(v)])),
    top: [...byName]
      .sort((a, b) => b[1].bytes - a[1].bytes)
      .slice(0, topN)
      .map(([name, { count, bytes }]) => ({ name, count, MiB: mib(bytes) })),
  };
}

if (process.argv[1] === import.meta.filename) {
  // biome-ignore lint/suspicious/noConsole: a command-line helper
  console.log(
    JSON.stringify(
      await summarizeHeapSnapshot(process.argv[2] as string, Number(process.argv[3] ?? 25)),
      null,
      1,
    ),
  );
}
