// Spillway's memory of its own writes: per pod and UID, bounded, expiring.
import { describe, expect, it } from 'vitest';
import { PodMemory } from '../../src/pods/memory.ts';

describe('PodMemory', () => {
  it('gives a namesake (same key, new UID) none of the earlier pod’s memory', () => {
    const memory = new PodMemory();
    memory.rememberCreate('shop/web-1', 'uid-a', 1000);
    memory.markSpecInSync('shop/web-1', 'uid-a', '10', '7');
    expect(memory.recall('shop/web-1', 'uid-a', '10')).toMatchObject({ createdAt: 1000 });
    const namesake = memory.recall('shop/web-1', 'uid-b', '1');
    expect(namesake.createdAt).toBeUndefined();
    expect(namesake.specInSync).toBeUndefined();
  });

  it('keeps a written status until the informer shows that resourceVersion', () => {
    const memory = new PodMemory();
    memory.rememberStatus('shop/web-1', 'uid-a', '11', { phase: 'Running' }, Date.now());
    expect(memory.recall('shop/web-1', 'uid-a', '10').writtenStatus?.resourceVersion).toBe('11');
    expect(memory.recall('shop/web-1', 'uid-a', '11').writtenStatus).toBeUndefined();
  });

  it('forgets an uncertain create once the delegate is seen', () => {
    const memory = new PodMemory();
    memory.rememberAttempt('shop/web-1', 'uid-a', 5);
    expect(memory.recall('shop/web-1', 'uid-a', '1').attemptedAt).toBe(5);
    memory.delegateSeen('shop/web-1', 'uid-a');
    expect(memory.recall('shop/web-1', 'uid-a', '1')).toMatchObject({ seen: true, attemptedAt: undefined });
  });

  it('remembers delete requests in bounded memory, the newest kept', () => {
    const memory = new PodMemory();
    for (let i = 0; i < 150_000; i++) memory.rememberDelete(`uid-${i}`, i);
    expect(memory.deleteRequestedAt('uid-149999')).toBe(149_999);
    expect(memory.deleteRequestedAt('uid-0')).toBeUndefined();
    expect(memory.deleteRequestedAt(undefined)).toBeUndefined();
  });
});
