import type { RedisClient } from './scripts.ts';

export interface DependencyStatus {
  readonly reachable: boolean;
  readonly latencyMs: number | null;
  readonly error?: string;
  readonly since: string;
}

/**
 * Watches Redis with a PING a second. While it fails, the process reports `paused` with the
 * reason; it turns `running` again by itself when PING answers.
 */
export class RedisWatch {
  private state: DependencyStatus = {
    reachable: false,
    latencyMs: null,
    error: 'not checked yet',
    since: new Date().toISOString(),
  };
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly target: string,
    private readonly everyMs = 1000,
  ) {}

  start(): void {
    const tick = async () => {
      const started = performance.now();
      try {
        await Promise.race([
          this.redis.ping(),
          new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 1 s')), 1000)),
        ]);
        const latencyMs = Math.round((performance.now() - started) * 100) / 100;
        const since = this.state.reachable ? this.state.since : new Date().toISOString();
        this.state = { reachable: true, latencyMs, since };
      } catch (err) {
        const since = this.state.reachable ? new Date().toISOString() : this.state.since;
        this.state = { reachable: false, latencyMs: null, error: (err as Error).message, since };
      }
      if (!this.stopped) this.timer = setTimeout(tick, this.everyMs);
    };
    void tick();
  }

  get status(): DependencyStatus & { target: string } {
    return { ...this.state, target: this.target };
  }

  get pausedReason(): string | undefined {
    if (this.state.reachable) return undefined;
    return `Redis at ${this.target} is unreachable (${this.state.error ?? 'unknown error'}) since ${this.state.since}; commands answer 503 until it is back, and this clears by itself`;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
