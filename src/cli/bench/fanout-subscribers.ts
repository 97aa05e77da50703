/**
 * The `fanout` workload's subscriber process, started by fanout.ts with an IPC channel: its own
 * entry, so the bench can start it from a bundle as it does its other children (http.ts).
 */
import { subscriberProcess } from './fanout.ts';

await subscriberProcess();
