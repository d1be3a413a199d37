// The Prometheus text format, just as far as kubelet resource metrics need it: parse samples
// (name, labels, value, optional millisecond timestamp) and write them back. Pure.

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
  readonly timestampMs?: number;
}

const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+(-?\d+))?\s*$/;
const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*/y;

function unescapeLabel(value: string): string {
  return value.replace(/\\(["\\n])/g, (_match, c: string) => (c === 'n' ? '\n' : c));
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const raw of text.split('\n')) {
    const trimmed = raw.trim();
    if (!trimmed || trimmed.startsWith('#')) continue;
    const match = line.exec(trimmed);
    if (!match) continue;
    const [, name = '', labelText = '', valueText = '', timestamp] = match;
    const labels: Record<string, string> = {};
    label.lastIndex = 0;
    let pair = label.exec(labelText);
    while (pair) {
      labels[pair[1] as string] = unescapeLabel(pair[2] as string);
      pair = label.exec(labelText);
    }
    const value =
      valueText === '+Inf'
        ? Number.POSITIVE_INFINITY
        : valueText === '-Inf'
          ? Number.NEGATIVE_INFINITY
          : Number(valueText);
    if (Number.isNaN(value) && valueText !== 'NaN') continue;
    samples.push({ name, labels, value, ...(timestamp ? { timestampMs: Number(timestamp) } : {}) });
  }
  return samples;
}

export interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  readonly samples: readonly Sample[];
}

export function formatPrometheusText(families: readonly Family[]): string {
  const lines: string[] = [];
  for (const family of families) {
    lines.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`);
    for (const sample of family.samples) {
      const labels = Object.entries(sample.labels)
        .map(([key, value]) => `${key}="${escapeLabel(value)}"`)
        .join(',');
      const timestamp = sample.timestampMs !== undefined ? ` ${Math.round(sample.timestampMs)}` : '';
      lines.push(`${family.name}${labels ? `{${labels}}` : ''} ${sample.value}${timestamp}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
