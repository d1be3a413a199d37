// An insertion-ordered set of keys taken from the front in O(1). A JS Set's first element is O(1) to
// read only while nothing was deleted before it: taking keys off the front of a Set of 10,000 leaves
// holes that every later take walks over (quadratic; half a second at 50,000 keys).

export class KeyFifo {
  /** Key → the sequence number of its live entry; entries with another number are stale. */
  private readonly members = new Map<string, number>();
  private entries: { key: string; seq: number }[] = [];
  private head = 0;
  private seq = 0;

  get size(): number {
    return this.members.size;
  }

  has(key: string): boolean {
    return this.members.has(key);
  }

  /** Appends the key unless it is already in; returns whether it was added. */
  add(key: string): boolean {
    if (this.members.has(key)) return false;
    const seq = this.seq++;
    this.members.set(key, seq);
    this.entries.push({ key, seq });
    return true;
  }

  delete(key: string): boolean {
    return this.members.delete(key);
  }

  /** Removes and returns the oldest key, or undefined when empty. */
  shift(): string | undefined {
    while (this.head < this.entries.length) {
      const entry = this.entries[this.head++] as { key: string; seq: number };
      if (this.members.get(entry.key) !== entry.seq) continue;
      this.members.delete(entry.key);
      this.compact();
      return entry.key;
    }
    this.entries = [];
    this.head = 0;
    return undefined;
  }

  clear(): void {
    this.members.clear();
    this.entries = [];
    this.head = 0;
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}
