/**
 * The live feed a simulation watches: a WebSocket on a workspace's /events/live from a position
 * on. When it drops after opening, it reconnects from the last event seen (the feed replays from
 * there with no gap), backing off from 250 ms to 4 s.
 */
import WebSocket from 'ws';
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
  private socket: WebSocket | undefined;
  /** The position of the last event seen (a reconnect replays from there). */
  private lastPosition = '0-0';
  /** Times the feed dropped and was opened again. */
  reconnects = 0;
  /** Closed for good: nothing more is handed on, even what the socket still had buffered. */
  private closed = false;

  /**
   * @param url the feed's URL for a start position
   * @param onEvent every event, in order
   * @param timer runs a function later, unless the run has ended by then
   * @param ending whether the run has ended (then a drop is not reconnected)
   */
  constructor(
    private readonly url: (after: string) => string,
    private readonly onEvent: (e: Envelope) => void,
    private readonly timer: (ms: number, fn: () => void) => void,
    private readonly ending: () => boolean,
    /** Headers of the upgrade: the API key, authenticated before the socket opens. */
    private readonly headers: Record<string, string> = {},
  ) {}

  /** Opens the feed from `after`; fails with a FatalError when it cannot. */
  open(after: string): Promise<void> {
    this.lastPosition = after;
    const url = this.url(after);
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { handshakeTimeout: 5_000, headers: this.headers });
      this.socket = socket;
      let opened = false;
      socket.on('open', () => {
        opened = true;
        resolve();
      });
      socket.on('message', (data) => this.message(String(data)));
      socket.on('error', (err) => {
        if (!opened) reject(new FatalError(`cannot open the live feed ${url}: ${err.message}`));
      });
      socket.on('close', () => {
        if (!opened || this.closed || this.ending() || this.socket !== socket) return;
        this.reconnects++;
        this.reconnect(250);
      });
    });
  }

  close(): void {
    this.closed = true;
    this.socket?.close();
  }

  /** The position of the last event handed on: the feed has given everything up to it. */
  get position(): string {
    return this.lastPosition;
  }

  private reconnect(delayMs: number): void {
    this.timer(delayMs, () => {
      this.open(this.lastPosition).catch(() => this.reconnect(Math.min(delayMs * 2, 4_000)));
    });
  }

  private message(text: string): void {
    if (this.closed) return;
    let e: Envelope;
    try {
      e = JSON.parse(text) as Envelope;
    } catch {
      return;
    }
    if (typeof e.position === 'string') this.lastPosition = e.position;
    this.onEvent(e);
  }
}
