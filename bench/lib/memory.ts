// Memory of a process at rest (the median of a few seconds of samples: one sample may fall just before
// a garbage collection), and values from a Prometheus text endpoint (Spillway's heap and sessions).
import { setTimeout as sleep } from 'node:timers/promises';
import { rssBytes } from './process-stats.ts';
import { percentile } from './stats.ts';

export async function restingRss(pid: number, samples = 20, intervalMs = 100): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < samples; i++) {
    values.push(rssBytes(pid));
    await sleep(intervalMs);
  }
  return percentile(values, 50);
}

/** The sum of the samples of a metric whose labels include all of `labels` (0 when there is none). */
export async function scrapeMetric(
  url: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const text = await (await fetch(url)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) continue;
    const wanted = Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`));
    if (wanted) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
