/**
 * The live feed a simulation watches: the client's subscription (src/client/live.ts) to a
 * workspace's /events/live from a position on. When it drops after opening, it reconnects from the
 * last event seen (the feed replays from there with no gap), backing off from 250 ms to 4 s. A
 * path that dies without a close (a VIP that moved) is noticed by the feed's heartbeat: silent
 * for two of the server's intervals, the socket is dropped and opened again the same way.
 */
import {
  type EventType,
  type Subscription,
  type SwitchboardClient,
  SwitchboardError,
} from '../../client/index.ts';
import { FatalError } from './http.ts';

export interface Envelope {
  readonly position: string;
  readonly type: string;
  readonly data: {
    contactId?: string;
    agentId?: string;
    waitedMs?: number;
    /** AssignmentMade when offers are on. */
    offer?: { id: number; expiresAt: string };
    assignedAt?: string;
    acceptedAt?: string;
    /** AssignmentRejected: rejected, presence or removed. */
    reason?: string;
  };
}

export class LiveFeed {
  private sub: Subscription | undefined;
  private start = '0-0';

  /**
   * @param client the client of the run's workspace (its key authenticates the upgrade)
   * @param types the event types the run follows
   * @param onEvent every event, in order
   * @param onFailure an exception of `onEvent` (with the event it was handling), or a failure of
   *   the feed itself (a socket error, a refused reconnection; no event): nothing goes unseen
   */
  constructor(
    private readonly client: SwitchboardClient,
    private readonly types: readonly string[],
    private readonly onEvent: (e: Envelope) => void,
    private readonly onFailure: (err: Error, e?: Envelope) => void,
  ) {}

  /** Opens the feed from `after`; fails with a FatalError when it cannot. */
  async open(after: string): Promise<void> {
    this.start = after;
    const sub = this.client.subscribe(
      {
        after,
        types: this.types as EventType[],
        backoffMs: 250,
        maxBackoffMs: 4_000,
        onError: (err) => this.onFailure(err),
      },
      (e) => this.handle(e as unknown as Envelope),
    );
    this.sub = sub;
    try {
      await sub.ready;
    } catch (err) {
      // With its status: a feed refused at its opening (the key revoked meanwhile: 401) is told
      // what key to give, as a refusal of an open feed is.
      throw new FatalError(
        `cannot open the live feed of ${this.client.url}${this.client.workspacePath}: ${(err as Error).message}`,
        err instanceof SwitchboardError ? err.status : undefined,
      );
    }
  }

  /** One event to `onEvent`; what it throws goes to `onFailure` with the event. */
  handle(e: Envelope): void {
    try {
      this.onEvent(e);
    } catch (err) {
      this.onFailure(err instanceof Error ? err : new Error(String(err)), e);
    }
  }

  close(): void {
    this.sub?.close();
  }

  /** Resolves when the feed has ended: closed here, or refused for good (told to `onFailure`). */
  get ended(): Promise<void> {
    return this.sub?.ended ?? Promise.resolve();
  }

  /** Where the feed was opened: after this position. */
  get startedAfter(): string {
    return this.start;
  }

  /** The position of the last event handed on: the feed has given everything up to it. */
  get position(): string {
    return this.sub?.position ?? this.start;
  }

  /** Times the feed dropped and was opened again. */
  get reconnects(): number {
    return this.sub?.reconnects ?? 0;
  }
}
