// When a streaming session reached each step (accepted, authenticated, upgraded, remote connected,
// first output, done), for the debug log: where the time of a short exec goes, per session.
export class PhaseTimer {
  private readonly start: number;
  private readonly marks: [string, number][] = [];

  constructor(start = performance.now()) {
    this.start = start;
  }

  mark(phase: string): void {
    this.marks.push([phase, performance.now()]);
  }

  /** Milliseconds from the start to each step, in the order they happened. */
  toJSON(): Record<string, number> {
    return Object.fromEntries(
      this.marks.map(([phase, at]) => [phase, Math.round((at - this.start) * 100) / 100]),
    );
  }
}
