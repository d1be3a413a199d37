// Where the time of Spillway's streaming sessions went: the `session timings` lines Spillway logs at
// debug level when a session ends (milliseconds from the TCP accept to each step), summarised as the
// median of each step over the sessions of one stretch of the log.
import { readFile } from 'node:fs/promises';
import { percentile } from './stats.ts';

export type Phases = Record<string, number>;

/** The phases of every session logged in `logFile` after byte `from` (sessions in the order they ended). */
export async function sessionPhases(logFile: string, from = 0): Promise<Phases[]> {
  const text = (await readFile(logFile)).subarray(from).toString();
  const sessions: Phases[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes('"session timings"')) continue;
    try {
      const entry = JSON.parse(line) as { phases?: Phases };
      if (entry.phases) sessions.push(entry.phases);
    } catch {
      // a line cut by a concurrent write
    }
  }
  return sessions;
}

/** The median of each step, in the order the steps usually happen (by their median). */
export function medianPhases(sessions: readonly Phases[]): Phases {
  const names = new Set(sessions.flatMap((phases) => Object.keys(phases)));
  const medians = [...names].map((name) => {
    const values = sessions.map((phases) => phases[name]).filter((v): v is number => v !== undefined);
    return [name, Math.round(percentile(values, 50) * 10) / 10] as const;
  });
  return Object.fromEntries(medians.sort((a, b) => a[1] - b[1]));
}
