// The root logger. Components take a child logger carrying their key fields (cluster, node, pod).
import { type Logger, pino } from 'pino';

export type { Logger };

export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino({
    name: options.name ?? 'spillway',
    level: options.level ?? process.env.SPILLWAY_LOG_LEVEL ?? 'info',
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
