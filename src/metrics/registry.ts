// Spillway's own Prometheus metrics (names prefixed `spillway_`), in one registry that the metrics
// server serves. Components declare their metrics here, next to each other, so names and labels stay
// consistent; a metric is created once per process however many remotes use it.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export const metricsRegistry = new Registry();

type Labels<T extends string> = readonly T[];

/** A counter registered once; a second call with the same name returns the first. */
export function counter<T extends string>(name: string, help: string, labelNames: Labels<T>): Counter<T> {
  const existing = metricsRegistry.getSingleMetric(name);
  if (existing) return existing as Counter<T>;
  return new Counter({ name, help, labelNames: [...labelNames], registers: [metricsRegistry] });
}

export function gauge<T extends string>(name: string, help: string, labelNames: Labels<T>): Gauge<T> {
  const existing = metricsRegistry.getSingleMetric(name);
  if (existing) return existing as Gauge<T>;
  return new Gauge({ name, help, labelNames: [...labelNames], registers: [metricsRegistry] });
}

export function histogram<T extends string>(
  name: string,
  help: string,
  labelNames: Labels<T>,
  buckets: readonly number[] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
): Histogram<T> {
  const existing = metricsRegistry.getSingleMetric(name);
  if (existing) return existing as Histogram<T>;
  return new Histogram({
    name,
    help,
    labelNames: [...labelNames],
    buckets: [...buckets],
    registers: [metricsRegistry],
  });
}
