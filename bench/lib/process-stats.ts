// CPU seconds and resident memory of a process, read from /proc (Linux).
import { readFileSync } from 'node:fs';

const CLOCK_TICKS_PER_SECOND = 100;

export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of /proc/<pid>/stat (11 and 12 after the command name).
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

export function rssBytes(pid: number): number {
  return statusBytes(pid, 'VmRSS');
}

/**
 * The file-backed part of RSS: pages of mapped files, nearly all of them the node binary's own code
 * (about 37 MiB for a bare `node`). The rest (RssAnon) is what the process itself allocated.
 */
export function fileRssBytes(pid: number): number {
  return statusBytes(pid, 'RssFile');
}

function statusBytes(pid: number, field: string): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1];
  return Number(kib ?? 0) * 1024;
}

/** Samples RSS every interval; stop() returns the peak. */
export function sampleRss(pid: number, intervalMs = 250): { stop: () => number } {
  let peak = 0;
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssBytes(pid));
    } catch {
      // the process ended
    }
  }, intervalMs);
  return {
    stop: () => {
      clearInterval(timer);
      return peak;
    },
  };
}
