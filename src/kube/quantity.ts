// Kubernetes resource quantities ("100m", "16Gi", "1.5", "2e3") as exact integers of nano-units, so
// sums and differences of CPU, memory and extended resources never lose precision.

const NANO = 1_000_000_000n;

const binarySuffixes: [string, bigint][] = [
  ['Ei', 1024n ** 6n],
  ['Pi', 1024n ** 5n],
  ['Ti', 1024n ** 4n],
  ['Gi', 1024n ** 3n],
  ['Mi', 1024n ** 2n],
  ['Ki', 1024n],
];

const decimalSuffixes: Record<string, bigint> = {
  n: 1n,
  u: 1_000n,
  m: 1_000_000n,
  '': NANO,
  k: NANO * 1_000n,
  M: NANO * 1_000_000n,
  G: NANO * 1_000_000_000n,
  T: NANO * 1_000_000_000_000n,
  P: NANO * 1_000_000_000_000_000n,
  E: NANO * 1_000_000_000_000_000_000n,
};

const pattern = /^([+-]?)(\d+)(?:\.(\d+))?(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$/;

/** Parses a quantity into nano-units. Throws on anything Kubernetes would not accept. */
export function parseQuantity(text: string | number): bigint {
  const value = String(text).trim();
  const match = pattern.exec(value);
  if (!match) throw new Error(`invalid quantity "${value}"`);
  const [, sign, whole = '0', fraction = '', exponent, suffix = ''] = match;
  // The number as an integer of 10^-fractionDigits units.
  let scaled = BigInt(whole + fraction);
  let denominator = 10n ** BigInt(fraction.length);
  if (exponent) {
    const power = Number(exponent.slice(1));
    if (power >= 0) scaled *= 10n ** BigInt(power);
    else denominator *= 10n ** BigInt(-power);
    scaled *= NANO;
  } else {
    const binary = binarySuffixes.find(([name]) => name === suffix);
    scaled *= binary ? binary[1] * NANO : (decimalSuffixes[suffix] ?? NANO);
  }
  // Kubernetes rounds sub-nano precision up.
  const nanos = (scaled + denominator - 1n) / denominator;
  return sign === '-' ? -nanos : nanos;
}

export type QuantityStyle = 'decimal' | 'binary';

/** Memory-like resources read best with binary suffixes; counts and CPU with plain or milli units. */
export function styleFor(resource: string): QuantityStyle {
  return resource === 'memory' || resource === 'ephemeral-storage' || resource.startsWith('hugepages-')
    ? 'binary'
    : 'decimal';
}

/** Formats nano-units as a canonical quantity string. */
export function formatQuantity(nanos: bigint, style: QuantityStyle = 'decimal'): string {
  if (nanos < 0n) return `-${formatQuantity(-nanos, style)}`;
  if (nanos % NANO === 0n) {
    const units = nanos / NANO;
    if (style === 'binary' && units > 0n) {
      for (const [suffix, size] of binarySuffixes) {
        if (units % size === 0n) return `${units / size}${suffix}`;
      }
    }
    return units.toString();
  }
  if (nanos % 1_000_000n === 0n) return `${nanos / 1_000_000n}m`;
  if (nanos % 1_000n === 0n) return `${nanos / 1_000n}u`;
  return `${nanos}n`;
}

/** A set of resources (cpu, memory, pods, extended resources) with exact arithmetic. */
export type ResourceList = Map<string, bigint>;

export function parseResourceList(list: Record<string, string | number> | undefined): ResourceList {
  const result: ResourceList = new Map();
  for (const [name, value] of Object.entries(list ?? {})) result.set(name, parseQuantity(value));
  return result;
}

export function formatResourceList(list: ResourceList): Record<string, string> {
  const result: Record<string, string> = {};
  for (const name of [...list.keys()].sort())
    result[name] = formatQuantity(list.get(name) ?? 0n, styleFor(name));
  return result;
}

export function addInto(target: ResourceList, source: ResourceList): ResourceList {
  for (const [name, value] of source) target.set(name, (target.get(name) ?? 0n) + value);
  return target;
}

/** target − source for the resources target has, never below zero. */
export function subtractClamped(target: ResourceList, source: ResourceList): ResourceList {
  const result: ResourceList = new Map();
  for (const [name, value] of target) {
    const remaining = value - (source.get(name) ?? 0n);
    result.set(name, remaining > 0n ? remaining : 0n);
  }
  return result;
}

/** Per resource, the larger of the two. */
export function maxOf(a: ResourceList, b: ResourceList): ResourceList {
  const result: ResourceList = new Map(a);
  for (const [name, value] of b)
    result.set(name, value > (result.get(name) ?? 0n) ? value : (result.get(name) ?? 0n));
  return result;
}

export function resourceListsEqual(a: ResourceList, b: ResourceList): boolean {
  if (a.size !== b.size) return false;
  for (const [name, value] of a) if (b.get(name) !== value) return false;
  return true;
}
