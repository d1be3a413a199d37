// Durations as kubectl takes them (`--duration=720h`, `90m`, `1h30m`, `30d`), in seconds. Pure.
const units: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

export function parseDuration(text: string): number {
  const parts = [...text.matchAll(/(\d+)([smhd])/g)];
  if (!text || parts.map((p) => p[0]).join('') !== text) {
    throw new RangeError(`"${text}" is not a duration (e.g. 720h, 90m, 30d)`);
  }
  return parts.reduce((total, [, amount, unit]) => total + Number(amount) * (units[unit ?? 's'] ?? 1), 0);
}

export function formatDuration(seconds: number): string {
  if (seconds >= 86400 && seconds % 3600 === 0)
    return `${Math.floor(seconds / 86400)}d${seconds % 86400 ? `${(seconds % 86400) / 3600}h` : ''}`;
  if (seconds >= 3600)
    return `${Math.floor(seconds / 3600)}h${seconds % 3600 ? `${Math.round((seconds % 3600) / 60)}m` : ''}`;
  if (seconds >= 60) return `${Math.round(seconds / 60)}m`;
  return `${seconds}s`;
}
