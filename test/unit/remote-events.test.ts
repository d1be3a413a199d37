import { describe, expect, it } from 'vitest';
import { DEFAULT_EVENT_MIRROR_LIMITS, EventThrottle, type SlimEvent } from '../../src/pods/remote-events.ts';

function event(name: string, pod: string, count = 1, message = 'pulled'): SlimEvent {
  return {
    metadata: { name, namespace: 'shop' },
    involved: { namespace: 'shop', name: pod, uid: `uid-${pod}` },
    type: 'Normal',
    reason: 'Pulled',
    message,
    count,
  };
}

describe('remote event mirroring is bounded', () => {
  const limits = {
    ...DEFAULT_EVENT_MIRROR_LIMITS,
    perPodBurst: 3,
    perPodRefillSeconds: 10,
    repeatSeconds: 30,
    maxPending: 5,
  };

  it('skips an event seen as it is (relists, unchanged updates) and folds quick repeats', () => {
    const throttle = new EventThrottle(limits);
    expect(throttle.admit(event('e1', 'a'), 0, 0)).toBe('accepted');
    expect(throttle.admit(event('e1', 'a'), 0, 0)).toBe('unchanged');
    expect(throttle.admit(event('e1', 'a', 2), 0, 1000)).toBe('folded');
    expect(throttle.admit(event('e1', 'a', 3), 0, 31_000)).toBe('accepted');
  });

  it('does not let a repeating event (a failing probe) use up its pod budget', () => {
    const throttle = new EventThrottle(limits);
    throttle.admit(event('readiness', 'probed'), 0, 0);
    for (let count = 2; count < 100; count++)
      throttle.admit(event('readiness', 'probed', count), 0, count * 2000);
    expect(throttle.admit(event('liveness', 'probed', 1, 'Liveness probe failed'), 0, 200_000)).toBe(
      'accepted',
    );
  });

  it('gives each pod a burst, then one event per refill period', () => {
    const throttle = new EventThrottle(limits);
    const admitted = Array.from({ length: 5 }, (_, i) => throttle.admit(event(`e${i}`, 'chatty'), 0, 0));
    expect(admitted).toEqual(['accepted', 'accepted', 'accepted', 'dropped', 'dropped']);
    expect(throttle.admit(event('other', 'quiet'), 0, 0)).toBe('accepted');
    expect(throttle.admit(event('later', 'chatty'), 0, 10_000)).toBe('accepted');
  });

  it('drops what would wait beyond maxPending', () => {
    const throttle = new EventThrottle(limits);
    expect(throttle.admit(event('e', 'a'), 5, 0)).toBe('dropped');
    expect(throttle.admit(event('f', 'a'), 4, 0)).toBe('accepted');
  });

  it('keeps bounded memory however many events and pods go by', () => {
    const throttle = new EventThrottle(limits);
    for (let i = 0; i < 50_000; i++) throttle.admit(event(`e${i}`, `pod-${i}`), 0, 0);
    // The oldest are forgotten: the first event is new again.
    expect(throttle.admit(event('e0', 'pod-0'), 0, 0)).toBe('accepted');
  });
});
