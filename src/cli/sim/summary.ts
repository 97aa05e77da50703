/** What a simulation reports: its parameters, the state of each contact, the summary of a run. */

/** The run's shape, as the summary reports it. */
export interface SimParameters {
  readonly agents: number;
  readonly contacts: number;
  /** Contacts queued per second. */
  readonly rate: number;
  readonly handleMinS: number;
  readonly handleMaxS: number;
  /** Seconds a customer waits before abandoning. */
  readonly patienceS: number;
  /** Hard limit of the whole run, seconds. */
  readonly maxSeconds: number;
  /** How long an agent takes to answer an offer, seconds (drawn between the two). */
  readonly acceptMinS: number;
  readonly acceptMaxS: number;
  /** The share of offers an agent rejects, and the share it lets expire (0..1 each). */
  readonly rejectRate: number;
  readonly missRate: number;
  /** Seconds an agent that missed an offer stays away before it comes back available. */
  readonly missBreakS: number;
  /** Contacts' priorities are drawn from 0..priorities-1 (1: all 0). */
  readonly priorities: number;
  /** Agents hold their skills at levels 1..5 (drawn), instead of plain. */
  readonly levels: boolean;
  /** Each agent's capacity (contacts at once). */
  readonly capacity: number;
}

/** The workspace's settings the run ran with (GET /settings; see docs/API.md). */
export interface SimSettings {
  readonly offerTimeoutMs: number;
  readonly wrapUpMs: number;
  readonly missedOfferPresence: string;
  readonly maxWaitMs: number | null;
  readonly priorityWeightMs?: number;
  readonly agentSelection?: string;
}

/**
 * `feed-lost`: the live feed ended for good (a refusal no reconnection gets past, such as the key
 * revoked): the run cannot see what happens any more, so it stops (exit 1).
 */
export type EndedBy = 'done' | 'time-limit' | 'interrupted' | 'feed-lost';

export interface SimSummary {
  readonly workspace: string;
  readonly url: string;
  readonly seed: number;
  readonly parameters: SimParameters;
  readonly settings: SimSettings;
  /** Contacts that got an agent (AssignmentMade seen). */
  readonly assigned: number;
  readonly abandoned: number;
  readonly completed: number;
  /** Contacts that waited past their maximum wait (ContactExpired). */
  readonly expired: number;
  /** Contacts still waiting for an agent (queued or offered) when the run ended. */
  readonly stillQueued: number;
  /** Assigned and not completed when the run ended. */
  readonly inService: number;
  /** Contacts never queued (their POST failed) or not sent before the run ended. */
  readonly notQueued: number;
  /** Contacts whose skills no agent holds all of: they can only abandon. */
  readonly unservable: number;
  /** Abandon requests answered 409 because the contact was assigned meanwhile (not errors). */
  readonly abandonRaced: number;
  readonly meanWaitMs: number | null;
  /**
   * GET /contacts/{id}'s estimatedWaitMs, read right after each contact was queued, against the
   * wait that followed until its first decision: how many contacts had an estimate and were then
   * decided, the mean absolute error, the mean of those waits, and the mean of their estimates.
   */
  readonly estimatedWait: {
    readonly checked: number;
    readonly meanAbsoluteErrorMs: number | null;
    readonly meanActualMs: number | null;
    readonly meanEstimatedMs: number | null;
  };
  readonly p90WaitMs: number | null;
  readonly maxWaitMs: number | null;
  /** Offers (AssignmentMade with an offer) and how they ended; all 0 when offers are off. */
  readonly offers: {
    readonly made: number;
    readonly accepted: number;
    readonly rejected: number;
    readonly expired: number;
    /** Taken back because the agent went away or was removed. */
    readonly withdrawn: number;
    /** Ended by the contact: it was abandoned or expired while offered. */
    readonly contactLeft: number;
    /** Mean time from an offer to its acceptance, ms (null: none accepted). */
    readonly meanTimeToAcceptMs: number | null;
    /** Accepts and rejects answered 409 because the offer had ended meanwhile (not errors). */
    readonly answerRaced: number;
  };
  /** Wrap-ups started (WrapUpStarted), and those ended by their timer or early. */
  readonly wrapUps: number;
  readonly wrapUpsEnded: number;
  /**
   * Requests tried again (commands, the reads of the settings, and the drain's pages of the log
   * after the run) after a network failure, a timeout, a 429 or a 5xx.
   */
  readonly retries: number;
  /**
   * HTTP failures after the retries (not counting abandonRaced), steps that failed unexpectedly
   * (`internal`: among them a live feed's event whose handling threw), and a drain that could not
   * read the log to its end within its bound (its counts may be short of the log's): under its last
   * page's status, or `timeout`.
   */
  readonly errors: number;
  readonly errorsByStatus: Record<string, number>;
  /** The first ten errors' messages; a short drain's (`drain: ...`) is kept past them. */
  readonly errorSamples: readonly string[];
  /** Commands answered 202: durable, outcome not known in time (not errors). */
  readonly accepted202: number;
  readonly liveReconnects: number;
  /** Failures of the live feed itself (socket errors, refused reconnections), and the last one's message. */
  readonly liveFailures: number;
  readonly lastLiveFailure?: string;
  readonly durationS: number;
  readonly endedBy: EndedBy;
}

export interface Progress {
  readonly sent: number;
  readonly waiting: number;
  readonly inService: number;
  readonly completed: number;
  readonly abandoned: number;
  readonly expired: number;
  readonly done: number;
}

export type ContactState =
  | 'planned'
  | 'sent'
  | 'queued'
  | 'offered'
  | 'assigned'
  | 'completed'
  | 'abandoned'
  | 'expired'
  | 'failed';

export type ContactTally = Pick<
  SimSummary,
  'assigned' | 'abandoned' | 'completed' | 'expired' | 'stillQueued' | 'inService' | 'notQueued'
>;

/** Where the contacts stand at the end of a run. */
export function tally(contacts: readonly { state: ContactState; everAssigned: boolean }[]): ContactTally {
  let assigned = 0;
  let stillQueued = 0;
  let inService = 0;
  let completed = 0;
  let abandoned = 0;
  let expired = 0;
  let notQueued = 0;
  for (const c of contacts) {
    if (c.everAssigned) assigned++;
    if (c.state === 'completed') completed++;
    else if (c.state === 'abandoned') abandoned++;
    else if (c.state === 'expired') expired++;
    else if (c.state === 'assigned') inService++;
    else if (c.state === 'queued' || c.state === 'sent' || c.state === 'offered') stillQueued++;
    else if (c.state === 'planned' || (c.state === 'failed' && !c.everAssigned)) notQueued++;
  }
  return { assigned, abandoned, completed, expired, stillQueued, inService, notQueued };
}
