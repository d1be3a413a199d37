// Fencing: a replica writes for a remote only while it can prove it still holds the remote's Lease.
// The proof lasts renewDeadline from the start of the last successful renewal (on this process's
// monotonic clock), which ends well before any other replica may take the Lease over (a full lease
// duration after it last saw it change). Past that, or once the Lease is lost, every request through a
// fenced client is refused before it is sent, and those in flight are aborted.
import type { ClusterClient, HttpMethod, RequestOptions } from '../kube/client.ts';
import { TerminalError } from '../kube/errors.ts';

/** A write refused because this replica no longer holds the remote's Lease; never retried. */
export class FencedError extends TerminalError {}

export class Fence {
  readonly name: string;
  private readonly controller = new AbortController();
  private validUntil: number;

  /** @param validForMs how long the proof lasts from now (the Lease was just acquired). */
  constructor(name: string, validForMs: number, now = performance.now()) {
    this.name = name;
    this.validUntil = now + validForMs;
  }

  /** Aborted once the Lease is lost: stops in-flight requests. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get lost(): boolean {
    return this.controller.signal.aborted;
  }

  /** A renewal that started at `startedAt` succeeded: the proof lasts validForMs from then. */
  extend(startedAt: number, validForMs: number): void {
    if (!this.lost) this.validUntil = Math.max(this.validUntil, startedAt + validForMs);
  }

  /** Whether writes are still allowed at `now`. */
  valid(now = performance.now()): boolean {
    return !this.lost && now < this.validUntil;
  }

  lose(reason: string): void {
    if (!this.lost) this.controller.abort(new FencedError(`lost the Lease of ${this.name}: ${reason}`));
  }

  /** Throws unless writes are allowed now. */
  check(): void {
    if (this.lost) throw this.controller.signal.reason;
    if (!this.valid()) {
      this.lose('could not renew it within the renew deadline');
      throw this.controller.signal.reason;
    }
  }
}

/**
 * The same client, with every request checked against the fence and aborted when it is lost. Methods
 * run with the proxy as `this`, so the convenience methods (get, create, patch…) go through the
 * fenced `request`, and state they set lands on the real client (a Proxy forwards writes).
 */
export function fencedClient(client: ClusterClient, fence: Fence): ClusterClient {
  const request = <T>(method: HttpMethod, path: string, options: RequestOptions = {}): Promise<T> => {
    try {
      fence.check();
    } catch (error) {
      return Promise.reject(error);
    }
    const signal = options.signal ? AbortSignal.any([options.signal, fence.signal]) : fence.signal;
    return client.request<T>(method, path, { ...options, signal });
  };
  return new Proxy(client, {
    get(target, property, receiver) {
      if (property === 'request') return request;
      return Reflect.get(target, property, receiver);
    },
  });
}
