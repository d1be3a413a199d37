// Durations as kubectl takes them (`--duration=720h`, `90m`, `1h30m`, `30d`), in seconds. Pure.
const units: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

export function parseDuration(text: string): number {
  const parts = [...text.matchAll(/(\d+)([smhd])/g)];
  if (!text || parts.map((p) => p[0]).join('') !== text) {
    throw new RangeError(`"${text}" is not a duration (e.g. 720h, 90m, 30d)`);
  }
  return parts.reduce((total, [, amount, unit]) => total + Number(amount) * (units[unit ?? 's'] ?? 1), 0);
}

/** A lifetime for people: the two largest units (29d23h, 5h30m, 90s). */
export function formatDuration(seconds: number): string {
  const minutes = Math.round(seconds / 60);
  if (seconds < 120) return `${Math.round(seconds)}s`;
  const parts: [number, string][] = [
    [Math.floor(minutes / 1440), 'd'],
    [Math.floor((minutes % 1440) / 60), 'h'],
    [minutes % 60, 'm'],
  ];
  const first = parts.findIndex(([amount]) => amount > 0);
  return parts
    .slice(first, first + 2)
    .filter(([amount]) => amount > 0)
    .map(([amount, unit]) => `${amount}${unit}`)
    .join('');
}
