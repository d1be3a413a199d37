import { describe, expect, it } from 'vitest';
import { StringInterner } from '../../src/kube/intern.ts';

describe('string interning for caches', () => {
  it('makes equal short strings one copy, in nested objects and arrays, leaving the values equal', () => {
    const interner = new StringInterner();
    const a = JSON.parse('{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}');
    const b = JSON.parse('{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}');
    const copyOfB = structuredClone(b);
    interner.internAll(a);
    interner.internAll(b);
    expect(b).toEqual(copyOfB);
    expect(interner.intern('Running')).toBe(a.status.phase);
  });

  it('stays bounded: it starts again when full and leaves long strings alone', () => {
    const interner = new StringInterner();
    for (let i = 0; i < 120_000; i++) interner.intern(`unique-${i}`);
    const long = 'x'.repeat(65);
    expect(interner.intern(long)).toBe(long);
    expect(interner.size).toBeLessThanOrEqual(50_000);
  });
});
