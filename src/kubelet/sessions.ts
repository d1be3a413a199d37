// How many streaming sessions (logs, exec, attach, port-forward, run) may be open at once: in all, per
// pod, and per caller, where "caller" means one that really is one user. The host API server relays
// every user's `kubectl logs/exec` under its own client identity, so capping that identity would cap
// the whole cluster: its sessions count against the global and per-pod limits only. Refusals are 429
// with the reason, counted in spillway_kubelet_sessions_refused_total.
import type { Identity } from './authn.ts';
import { KubeletError } from './http-errors.ts';
import { type SessionKind, type SessionLimitName, sessionsOpen, sessionsRefused } from './telemetry.ts';

export interface SessionLimitOptions {
  readonly maxSessions: number;
  readonly maxSessionsPerPod: number;
  /** For callers of the kubelet port that are one user (not the API server). */
  readonly maxSessionsPerClient: number;
  /** Users that relay requests for others: the host API server's kubelet client identity. */
  readonly apiServerUsers: readonly string[];
}

export interface SessionRequest {
  readonly kind: SessionKind;
  /** `namespace/name` of the host pod. */
  readonly pod: string;
  readonly identity: Identity;
}

function increment(counts: Map<string, number>, key: string, by: number): void {
  const next = (counts.get(key) ?? 0) + by;
  if (next > 0) counts.set(key, next);
  else counts.delete(key);
}

export class SessionLimits {
  private readonly options: SessionLimitOptions;
  private readonly relays: ReadonlySet<string>;
  private readonly perPod = new Map<string, number>();
  private readonly perClient = new Map<string, number>();
  private total = 0;

  constructor(options: SessionLimitOptions) {
    for (const name of ['maxSessions', 'maxSessionsPerPod', 'maxSessionsPerClient'] as const) {
      if (!(options[name] >= 1)) throw new Error(`session limits: ${name} must be at least 1`);
    }
    this.options = options;
    this.relays = new Set(options.apiServerUsers);
  }

  get open(): number {
    return this.total;
  }

  /** Whether the identity is the API server relaying other users' requests. */
  isRelay(identity: Identity): boolean {
    return this.relays.has(identity.user);
  }

  /** Admits a session or throws 429 naming the limit; returns the (idempotent) release function. */
  admit(request: SessionRequest): () => void {
    const { kind, pod, identity } = request;
    const client = this.isRelay(identity) ? undefined : identity.user;
    const refuse = (limit: SessionLimitName, message: string): never => {
      sessionsRefused.inc({ kind, limit });
      throw new KubeletError(429, message, { headers: { 'Retry-After': '1' } });
    };
    if (this.total >= this.options.maxSessions) {
      refuse('global', `too many concurrent sessions on this kubelet (at most ${this.options.maxSessions})`);
    }
    if ((this.perPod.get(pod) ?? 0) >= this.options.maxSessionsPerPod) {
      refuse(
        'pod',
        `too many concurrent sessions for pod ${pod} (at most ${this.options.maxSessionsPerPod})`,
      );
    }
    if (client !== undefined && (this.perClient.get(client) ?? 0) >= this.options.maxSessionsPerClient) {
      refuse(
        'client',
        `too many concurrent sessions for ${client} (at most ${this.options.maxSessionsPerClient})`,
      );
    }
    this.total++;
    increment(this.perPod, pod, 1);
    if (client !== undefined) increment(this.perClient, client, 1);
    sessionsOpen.inc({ kind });
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      increment(this.perPod, pod, -1);
      if (client !== undefined) increment(this.perClient, client, -1);
      sessionsOpen.dec({ kind });
    };
  }
}
