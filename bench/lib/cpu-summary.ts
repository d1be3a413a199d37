// Where a V8 CPU profile (.cpuprofile, from `node --cpu-prof`) spent its time: self time by
// function and by package or source file, the biggest first.
import { readFile } from 'node:fs/promises';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface Profile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
}

export interface CpuSummary {
  readonly seconds: number;
  readonly idlePercent: number;
  readonly byFunction: { name: string; percent: number }[];
  readonly byModule: { name: string; percent: number }[];
}

function moduleOf(url: string): string {
  if (!url) return '(native or idle)';
  if (url.startsWith('node:')) return url;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1] as string;
  const own = /\/(src|dist)\/(.*)$/.exec(url);
  return own ? (own[2] as string) : url;
}

export async function summarizeCpuProfile(file: string, topN = 20): Promise<CpuSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfMicros = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  let total = 0;
  for (let i = 0; i < samples.length; i++) {
    const delta = deltas[i + 1] ?? deltas[i] ?? 0;
    total += delta;
    selfMicros.set(samples[i] as number, (selfMicros.get(samples[i] as number) ?? 0) + delta);
  }
  const byFunction = new Map<string, number>();
  const byModule = new Map<string, number>();
  let idle = 0;
  for (const [id, micros] of selfMicros) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idle += micros;
      continue;
    }
    const name = `${functionName || '(anonymous)'} ${moduleOf(url)}:${lineNumber + 1}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + micros);
    const module = functionName === '(garbage collector)' ? '(garbage collector)' : moduleOf(url);
    byModule.set(module, (byModule.get(module) ?? 0) + micros);
  }
  const busy = total - idle;
  const top = (map: Map<string, number>) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, topN)
      .map(([name, micros]) => ({ name, percent: Math.round((micros / busy) * 1000) / 10 }));
  return {
    seconds: Math.round(busy / 1e4) / 100,
    idlePercent: Math.round((idle / total) * 1000) / 10,
    byFunction: top(byFunction),
    byModule: top(byModule),
  };
}

if (process.argv[1] === import.meta.filename) {
  // biome-ignore lint/suspicious/noConsole: a command-line helper
  console.log(JSON.stringify(await summarizeCpuProfile(process.argv[2] as string), null, 1));
}
