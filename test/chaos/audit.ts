// Reads an API server's audit log of pod deletions (test/cluster's auditPodDeletions): who deleted or
// evicted a pod, so a failure the suite counts names its cause instead of leaving a guess.
import { readFile } from 'node:fs/promises';

interface AuditEvent {
  readonly verb?: string;
  readonly stageTimestamp?: string;
  readonly user?: { readonly username?: string };
  readonly userAgent?: string;
  readonly objectRef?: { readonly namespace?: string; readonly name?: string; readonly subresource?: string };
  readonly responseStatus?: { readonly code?: number };
}

/** Each deletion or eviction of namespace/name the log holds: when, by whom, with what answer. */
export async function deletionsOf(logFile: string, namespace: string, name: string): Promise<string[]> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  const found: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes(`"${name}"`)) continue;
    const event = JSON.parse(line) as AuditEvent;
    const ref = event.objectRef;
    if (ref?.namespace !== namespace || ref.name !== name) continue;
    const what = ref.subresource ? `${event.verb} ${ref.subresource}` : event.verb;
    const agent = event.userAgent?.split(' ')[0];
    found.push(
      `${event.stageTimestamp} ${what} by ${event.user?.username} (${agent}) → ${event.responseStatus?.code}`,
    );
  }
  return found;
}
