/**
 * The workspace's figures as GET /stats answers them (docs/API.md, `GET /stats`): what
 * src/adapters/redis/projection-reads.ts reads from the projections (SERVED_WINDOW_MS, SERVED_KEEP
 * and LONGEST_WAIT_READS are its bounds), /metrics exports and the typed client (src/client)
 * receives. One definition, so the client's type cannot fall behind what the server sends.
 */
export interface WorkspaceStats {
  readonly queued: number;
  /** Queued contacts by skill set, every channel together. */
  readonly queueBySkills: Record<string, number>;
  /** Queued contacts by channel, then skill set. */
  readonly queueByChannel: Record<string, Record<string, number>>;
  readonly longestWaitMs: number;
  readonly oldestContactId: string | null;
  readonly agentsByState: Record<string, number>;
  readonly assignments: number;
  readonly completed: number;
  readonly abandoned: number;
  /** Contacts that left after their maximum wait. */
  readonly expired: number;
  readonly transferred: number;
  readonly contactsQueuedSoFar: number;
  /**
   * The last SERVED_WINDOW_MS of decisions (the latest SERVED_KEEP of each queue): how many, their
   * mean wait, and the service level: the share of them made within `serviceLevelMs` of arrival;
   * and of contacts that left while waiting (abandoned, expired; the latest SERVED_KEEP of each queue).
   */
  readonly window: WindowStats & { readonly ms: number; readonly serviceLevelMs: number };
  /** Each queue (channel and skills) with contacts waiting, or decisions, abandons or expirations in the window. */
  readonly queues: readonly QueueStats[];
  /** Contacts held over the capacity of the agents present as available (null: none present). */
  readonly occupancy: number | null;
  readonly position: string;
}

export interface WindowStats {
  readonly assignments: number;
  readonly meanWaitMs: number | null;
  readonly serviceLevel: number | null;
  /** Queued or offered contacts abandoned in the window (at most SERVED_KEEP per queue). */
  readonly abandons: number;
  /** Queued or offered contacts that left after their maximum wait in the window (same bound). */
  readonly expirations: number;
}

export interface QueueStats extends WindowStats {
  readonly channel: string;
  readonly skills: string;
  readonly queued: number;
  /**
   * How long the queue's oldest waiting contact has waited (0: none waits; null: not found among the
   * LONGEST_WAIT_READS oldest contacts of the workspace, so it waited at most as long as the last of them).
   */
  readonly longestWaitMs: number | null;
  /** The agents who may take the queue's contacts (its skills at their levels, its channel), by state. */
  readonly agents: Record<string, number>;
  /**
   * Among those agents present as available (states available, reserved, busy, wrapup): contacts
   * they hold over their capacity, every channel together (null: none present). The workspace's
   * `occupancy` restricted to the queue's agents.
   */
  readonly occupancy: number | null;
}
