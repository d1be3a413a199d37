// Keys due at a time, with one timer for all of them (a min-heap ordered by due time), instead of a
// timer per key: 10,000 pods each waiting for something cost one armed timer, and re-arming a key is
// O(log n). An earlier due time for a key replaces a later one; a later one is ignored.

interface Entry {
  readonly at: number;
  readonly key: string;
}

export class DelayedKeys {
  private readonly due = new Map<string, number>();
  /** Entries whose key is no longer due at that time are stale and skipped when they surface. */
  private heap: Entry[] = [];
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private readonly onDue: (key: string) => void;

  constructor(onDue: (key: string) => void) {
    this.onDue = onDue;
  }

  get size(): number {
    return this.due.size;
  }

  has(key: string): boolean {
    return this.due.has(key);
  }

  /** When the key is due, if it is waiting. */
  dueAt(key: string): number | undefined {
    return this.due.get(key);
  }

  /** The earliest time a waiting key is due, if any. */
  nextDueAt(): number | undefined {
    return this.nextValid();
  }

  /** Makes the key due at `at`, unless it is already due earlier. Returns whether it changed. */
  schedule(key: string, at: number): boolean {
    const current = this.due.get(key);
    if (current !== undefined && current <= at) return false;
    this.due.set(key, at);
    this.push({ at, key });
    if (this.heap.length > 2 * this.due.size + 1024) this.compact();
    if (at < this.timerAt) this.arm(at);
    return true;
  }

  /** The key no longer waits (it runs now, or is gone). */
  delete(key: string): boolean {
    return this.due.delete(key);
  }

  clear(): void {
    this.due.clear();
    this.heap = [];
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
  }

  private arm(at: number): void {
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.fire(), Math.max(0, at - Date.now()));
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = Date.now();
    for (let top = this.heap[0]; top && top.at <= now; top = this.heap[0]) {
      this.pop();
      if (this.due.get(top.key) !== top.at) continue;
      this.due.delete(top.key);
      this.onDue(top.key);
    }
    const next = this.nextValid();
    if (next !== undefined) this.arm(next);
  }

  /** The earliest due time of a key still waiting, dropping stale entries on the way. */
  private nextValid(): number | undefined {
    for (let top = this.heap[0]; top; top = this.heap[0]) {
      if (this.due.get(top.key) === top.at) return top.at;
      this.pop();
    }
    return undefined;
  }

  private compact(): void {
    this.heap = [...this.due].map(([key, at]) => ({ key, at }));
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  private push(entry: Entry): void {
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((heap[parent] as Entry).at <= entry.at) break;
      heap[i] = heap[parent] as Entry;
      i = parent;
    }
    heap[i] = entry;
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop();
    if (last && heap.length > 0) {
      heap[0] = last;
      this.down(0);
    }
  }

  private down(start: number): void {
    const heap = this.heap;
    const entry = heap[start] as Entry;
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child =
        right < heap.length && (heap[right] as Entry).at < (heap[left] as Entry).at ? right : left;
      if ((heap[child] as Entry).at >= entry.at) break;
      heap[i] = heap[child] as Entry;
      i = child;
    }
    heap[i] = entry;
  }
}
