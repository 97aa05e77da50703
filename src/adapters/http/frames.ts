/**
 * The live feed's WebSocket frames, made once per instance and shared by every subscriber: an
 * event's text frame is built once (however many subscribers send it), and the frames of a batch
 * of events the tail read are joined once per filter, so each subscriber gets one buffer (one
 * write) per batch. A subscriber's socket takes the bytes as they are when it runs no extension
 * (no permessage-deflate: the frames are the ones `ws` would make); otherwise, or without the
 * underlying socket, each event is sent through `ws` as text.
 *
 * What is made once is kept on the event and on the batch themselves, not in a WeakMap keyed by
 * them: V8's young-generation collection holds every value of a WeakMap that has moved to the old
 * generation as live, whether its key is or not, so the events, their texts and frames outlived
 * the collections after their hand-out and were promoted (about a quarter of what the process
 * promoted under `e2e`; docs/BENCHMARKS.md, "Events and requests in WeakMaps").
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { LiveEvent } from '../redis/event-log.ts';

/** A final, unmasked text frame (opcode 1) carrying `payload`: what a server sends. */
export function textFrame(payload: Buffer): Buffer {
  const n = payload.length;
  const header = n < 126 ? 2 : n < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + n);
  frame[0] = 0x81;
  if (n < 126) frame[1] = n;
  else if (n < 65_536) {
    frame[1] = 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(n), 2);
  }
  payload.copy(frame, header);
  return frame;
}

/** The event's text frame, made on first use and kept with the event. */
export function eventFrame(e: LiveEvent): Buffer {
  e.frame ??= textFrame(Buffer.from(e.text));
  return e.frame;
}

/** The events of a batch one filter selects, with their frames joined into one buffer. */
export interface Selection {
  readonly events: readonly LiveEvent[];
  /** Index in the batch of the first event selected (the batch's length when none is). */
  readonly first: number;
  /** Every selected event's frame, in order; null when none is selected. */
  readonly frames: Buffer | null;
}

const SELECTIONS = Symbol('selections');
/** A batch the tail handed every subscriber, with what each filter selected of it. */
type SharedBatch = readonly LiveEvent[] & { [SELECTIONS]?: Map<string, Selection> };

/**
 * The events of `batch` that `wanted` keeps and that decode as events, and their frames; `wanted`
 * must be the same for one `key`, and ask `e.decodable` before reading `e.envelope`.
 */
function select(batch: readonly LiveEvent[], wanted: (e: LiveEvent) => boolean): Selection {
  const events: LiveEvent[] = [];
  let first = batch.length;
  for (let i = 0; i < batch.length; i++) {
    const e = batch[i]!;
    // An entry that is no event is sent to nobody (`wanted` is asked first: a filter reading only
    // the type leaves the others unparsed).
    if (!wanted(e) || !e.decodable) continue;
    if (events.length === 0) first = i;
    events.push(e);
  }
  const frames =
    events.length === 0
      ? null
      : events.length === 1
        ? eventFrame(events[0]!)
        : Buffer.concat(events.map(eventFrame));
  return { events, first, frames };
}

/**
 * What `wanted` selects of a batch the tail handed every subscriber: computed once per batch
 * and `key` (a filter's canonical form), so subscribers with the same filter share it.
 */
export function sharedSelection(
  batch: readonly LiveEvent[],
  key: string,
  wanted: (e: LiveEvent) => boolean,
): Selection {
  const shared = batch as SharedBatch;
  let byKey = shared[SELECTIONS];
  if (!byKey) {
    byKey = new Map();
    shared[SELECTIONS] = byKey;
  }
  let s = byKey.get(key);
  if (!s) {
    s = select(batch, wanted);
    byKey.set(key, s);
  }
  return s;
}

/** What one subscriber's own filter selects of events no other subscriber shares (a replay page). */
export const ownSelection = select;

/**
 * How to write frames to one subscriber: to its underlying socket when it runs no extension (the
 * bytes `ws` would write itself), otherwise each event through `ws` as text.
 */
export function frameWriter(socket: WebSocket): (s: Selection) => void {
  const raw = (socket as unknown as { _socket?: Socket })._socket;
  if (raw && socket.extensions === '')
    return (s) => {
      if (s.frames !== null) raw.write(s.frames);
    };
  return (s) => {
    for (const e of s.events) socket.send(e.text);
  };
}

/**
 * How to write one text message of the route's own (a heartbeat) to a subscriber: the same way its
 * events go, so it leaves after every event written before it.
 */
export function textWriter(socket: WebSocket): (text: string) => void {
  const raw = (socket as unknown as { _socket?: Socket })._socket;
  if (raw && socket.extensions === '') return (text) => raw.write(textFrame(Buffer.from(text)));
  return (text) => socket.send(text);
}
