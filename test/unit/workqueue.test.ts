import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { TerminalError } from '../../src/kube/errors.ts';
import { type Reconciler, WorkQueue } from '../../src/queue/workqueue.ts';

const logger = pino({ level: 'silent' });
const controllers: AbortController[] = [];

function startQueue(reconcile: Reconciler, workers = 2, baseBackoffMs = 10): WorkQueue {
  const queue = new WorkQueue({ name: 'test', workers, reconcile, logger, baseBackoffMs, maxBackoffMs: 100 });
  const controller = new AbortController();
  controllers.push(controller);
  queue.start(controller.signal);
  return queue;
}

async function until(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await sleep(2);
  }
}

afterEach(() => {
  for (const controller of controllers.splice(0)) controller.abort();
});

describe('the work queue', () => {
  it('collapses repeated adds of a waiting key into one run', async () => {
    const runs: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const queue = startQueue(async (key) => {
      if (key === 'block') await gate;
      runs.push(key);
      return undefined;
    }, 1);
    queue.add('block');
    await until(() => queue.inFlight === 1);
    for (let i = 0; i < 5; i++) queue.add('a');
    expect(queue.length).toBe(1);
    release();
    await until(() => runs.length === 2);
    await sleep(20);
    expect(runs).toEqual(['block', 'a']);
  });

  it('never runs one key twice at once, and runs it again when it was added meanwhile', async () => {
    let concurrent = 0;
    let maxConcurrent = 0;
    let runs = 0;
    const queue = startQueue(async () => {
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      await sleep(20);
      concurrent--;
      runs++;
      return undefined;
    }, 4);
    queue.add('k');
    await until(() => queue.inFlight === 1);
    queue.add('k');
    queue.add('k');
    await until(() => runs === 2);
    await sleep(40);
    expect(maxConcurrent).toBe(1);
    expect(runs).toBe(2);
  });

  it('processes different keys in parallel across workers', async () => {
    let concurrent = 0;
    let maxConcurrent = 0;
    const queue = startQueue(async () => {
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      await sleep(30);
      concurrent--;
      return undefined;
    }, 3);
    for (const key of ['a', 'b', 'c']) queue.add(key);
    await until(() => maxConcurrent === 3);
    expect(maxConcurrent).toBe(3);
  });

  it('retries failures with growing backoff, and forgets them after a success', async () => {
    const attempts: number[] = [];
    const queue = startQueue(async () => {
      attempts.push(Date.now());
      if (attempts.length < 4) throw new Error('transient');
      return undefined;
    });
    queue.add('k');
    await until(() => attempts.length === 4);
    const gaps = attempts.slice(1).map((t, i) => t - (attempts[i] as number));
    expect(gaps[2]).toBeGreaterThan(gaps[0] as number);
    await sleep(10);
    expect(queue.failuresOf('k')).toBe(0);
  });

  it('never retries a terminal error', async () => {
    let runs = 0;
    const queue = startQueue(async () => {
      runs++;
      throw new TerminalError('cannot be done');
    });
    queue.add('k');
    await until(() => runs === 1);
    await sleep(100);
    expect(runs).toBe(1);
    expect(queue.delayedCount).toBe(0);
  });

  it('requeues after the delay a reconcile asks for', async () => {
    const times: number[] = [];
    const queue = startQueue(async () => {
      times.push(Date.now());
      return times.length === 1 ? { requeueAfter: 60 } : undefined;
    });
    queue.add('k');
    await until(() => times.length === 2);
    expect((times[1] as number) - (times[0] as number)).toBeGreaterThanOrEqual(55);
  });

  it('lets an immediate add overtake a pending delayed one', async () => {
    let runs = 0;
    const queue = startQueue(async () => {
      runs++;
      return undefined;
    });
    queue.addAfter('k', 10_000);
    queue.add('k');
    await until(() => runs === 1);
    expect(queue.delayedCount).toBe(0);
  });

  it('finishes the key in hand on shutdown and takes no more', async () => {
    let finished = 0;
    const queue = new WorkQueue({
      name: 'test',
      workers: 1,
      logger,
      reconcile: async () => {
        await sleep(30);
        finished++;
        return undefined;
      },
    });
    const controller = new AbortController();
    queue.start(controller.signal);
    queue.add('a');
    queue.add('b');
    await until(() => queue.inFlight === 1);
    await queue.shutdown();
    expect(finished).toBe(1);
    queue.add('c');
    expect(queue.length).toBe(1);
    await sleep(50);
    expect(finished).toBe(1);
  });

  it('validates its options', () => {
    expect(() => new WorkQueue({ name: 'x', workers: 0, logger, reconcile: async () => undefined })).toThrow(
      /workers must be at least 1/,
    );
  });
});

describe('priority', () => {
  it('runs priority keys first, but lets the others through regularly', async () => {
    const order: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const queue = startQueue(async (key) => {
      if (key === 'block') await gate;
      order.push(key);
      return undefined;
    }, 1);
    queue.add('block');
    await until(() => queue.inFlight === 1);
    for (let i = 0; i < 3; i++) queue.add(`normal-${i}`);
    for (let i = 0; i < 10; i++) queue.add(`urgent-${i}`, true);
    queue.add('normal-0', true); // promoted: it is now urgent
    release();
    await until(() => order.length === 14);
    expect(order.slice(1, 9)).toEqual(Array.from({ length: 8 }, (_, i) => `urgent-${i}`));
    expect(order[9]).toBe('normal-1');
    expect(order.slice(10)).toEqual(['urgent-8', 'urgent-9', 'normal-0', 'normal-2']);
  });
});
