import { describe, expect, it } from 'vitest';
import {
  addInto,
  formatQuantity,
  formatResourceList,
  maxOf,
  parseQuantity,
  parseResourceList,
  subtractClamped,
} from '../../src/kube/quantity.ts';

const nano = 1_000_000_000n;

describe('parseQuantity', () => {
  it.each([
    ['4', 4n * nano],
    ['100m', 100_000_000n],
    ['1.5', 1_500_000_000n],
    ['0.1', 100_000_000n],
    ['16Gi', 16n * 1024n ** 3n * nano],
    ['512Mi', 512n * 1024n ** 2n * nano],
    ['1Ki', 1024n * nano],
    ['1k', 1000n * nano],
    ['2M', 2_000_000n * nano],
    ['1e3', 1000n * nano],
    ['1E-3', 1_000_000n],
    ['250u', 250_000n],
    ['7n', 7n],
    ['+3', 3n * nano],
    ['-2', -2n * nano],
    [110, 110n * nano],
  ])('%s', (text, expected) => {
    expect(parseQuantity(text)).toBe(expected);
  });

  it('rounds sub-nano precision up, as Kubernetes does', () => {
    expect(parseQuantity('0.0000000001')).toBe(1n);
  });

  it.each(['', 'abc', '1.', '.5', '1 Gi', '1GB', '--1', '1e'])('rejects %j', (text) => {
    expect(() => parseQuantity(text)).toThrow(/invalid quantity/);
  });
});

describe('formatQuantity', () => {
  it.each([
    [4n * nano, 'decimal', '4'],
    [11_500_000_000n, 'decimal', '11500m'],
    [48n * 1024n ** 3n * nano, 'binary', '48Gi'],
    [1536n * 1024n ** 2n * nano, 'binary', '1536Mi'],
    [1000n * nano, 'binary', '1000'],
    [0n, 'binary', '0'],
    [250_000n, 'decimal', '250u'],
    [-3n * nano, 'decimal', '-3'],
  ] as const)('%s as %s is %s', (nanos, style, expected) => {
    expect(formatQuantity(nanos, style)).toBe(expected);
  });

  it('round-trips through parse', () => {
    for (const text of ['4', '100m', '16Gi', '3', '1Mi', '250u']) {
      expect(formatQuantity(parseQuantity(text), text.endsWith('i') ? 'binary' : 'decimal')).toBe(text);
    }
  });
});

describe('resource lists', () => {
  it('add, subtract without going below zero, and take maxima', () => {
    const a = parseResourceList({ cpu: '4', memory: '16Gi', pods: '110' });
    const b = parseResourceList({ cpu: '500m', memory: '20Gi', 'nvidia.com/gpu': '1' });
    expect(formatResourceList(addInto(new Map(a), b))).toEqual({
      cpu: '4500m',
      memory: '36Gi',
      'nvidia.com/gpu': '1',
      pods: '110',
    });
    expect(formatResourceList(subtractClamped(a, b))).toEqual({ cpu: '3500m', memory: '0', pods: '110' });
    expect(formatResourceList(maxOf(a, b))).toEqual({
      cpu: '4',
      memory: '20Gi',
      'nvidia.com/gpu': '1',
      pods: '110',
    });
  });
});
