// One copy of each short string in cached objects. JSON.parse gives every object its own copy of
// every value ("True", "Running", "nginx", condition types, reasons, label values, timestamps of
// pods created in the same second), and V8 never merges equal strings: at 10,000 pods that is about
// a quarter of a cached pod's memory. The table is bounded: when full it starts again (objects
// already cached keep the copies they have).

const MAX_LENGTH = 64;
const MAX_ENTRIES = 50_000;

export class StringInterner {
  private table = new Map<string, string>();

  get size(): number {
    return this.table.size;
  }

  intern(value: string): string {
    if (value.length > MAX_LENGTH) return value;
    const known = this.table.get(value);
    if (known !== undefined) return known;
    if (this.table.size >= MAX_ENTRIES) this.table = new Map();
    this.table.set(value, value);
    return value;
  }

  /** Replaces, in place, every short string in a JSON-shaped value by its one copy. */
  internAll<T>(value: T): T {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) value[i] = this.internValue(value[i]);
    } else if (value !== null && typeof value === 'object') {
      const record = value as Record<string, unknown>;
      for (const key in record) record[key] = this.internValue(record[key]);
    }
    return value;
  }

  private internValue(value: unknown): unknown {
    if (typeof value === 'string') return this.intern(value);
    if (value !== null && typeof value === 'object') return this.internAll(value);
    return value;
  }
}

/** The interner the caches of one process share. */
export const cacheStrings = new StringInterner();
