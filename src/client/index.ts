/**
 * Switchboard's typed client: `import { SwitchboardClient } from 'switchboard/client'`.
 * docs/API.md ("The client") shows how to use it.
 */
export {
  type Answer,
  type CallOptions,
  type ClientOptions,
  defaultRetryOn,
  type Failure,
  newIdempotencyKey,
  type OnRetry,
  type RetryInfo,
  type SendOptions,
  SwitchboardClient,
} from './client.ts';
export { type ArchiveHole, LiveFeedClosedError, type ProblemDetails, SwitchboardError } from './errors.ts';
export { comparePositions, type SubscribeOptions, type Subscription } from './live.ts';
export type * from './types.ts';
