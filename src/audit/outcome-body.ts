import { boundedView } from '../adapters/redis/projection-reads.ts';
import { type Command, commandTarget } from '../domain/commands.ts';
import type { Expected } from './command-replay.ts';
import { agentDocument, type ContactMeta, contactDocument, differences, jsonEqual } from './expected.ts';
import type { ReplayState } from './replay-state.ts';

/**
 * What an outcome's body must be: the answer the client got. A success answers with the view of
 * the document the command is about, as the command left it (API.md, "Commands"), or with what
 * the command did (an agent removed, the settings, contacts forgotten, a timer no longer current);
 * a rejection answers with its problem, the CommandRejected event's status, title, detail and
 * command id.
 */
export type BodyWant =
  | { readonly view: Record<string, unknown> | undefined }
  | {
      readonly problem: {
        readonly status: unknown;
        readonly title: unknown;
        /** Absent for a malformed entry's refusal: its detail is the projector's own wording. */
        readonly detail?: unknown;
        readonly commandId?: unknown;
      };
    };

/** The replayed state an outcome body is worked out from, right after its command. */
export interface BodyState {
  readonly state: ReplayState;
  readonly agentPositions: ReadonlyMap<string, string>;
  readonly contactMeta: ReadonlyMap<string, ContactMeta>;
  /**
   * The document the last fact's data was (a registration, an update, a contact queued): the
   * same object and position give the same document, so the outcome's view need not be built again.
   */
  readonly lastDocument?: DocumentMade | undefined;
}

/** A document worked out from a state object (an agent or a contact) at a position. */
export interface DocumentMade {
  readonly of: object;
  readonly position: string;
  readonly doc: Record<string, unknown>;
}

const documentOf = <T extends object>(
  made: DocumentMade | undefined,
  of: T,
  position: string,
  build: (x: T, position: string) => Record<string, unknown>,
): Record<string, unknown> =>
  made !== undefined && made.of === of && made.position === position ? made.doc : build(of, position);

/** Timer commands change nothing once their timer is no longer current, and say so. */
const TIMER_COMMANDS: ReadonlySet<string> = new Set([
  'ExpireOffer',
  'EndWrapUp',
  'ExpireContact',
  'EndPreference',
  'AdvanceStep',
]);

/** The body the outcome of command `c` (at `position`) must have, `events` being its expected events. */
export function bodyWant(
  s: BodyState,
  position: string,
  c: Command | undefined,
  events: readonly Expected[],
  status: number,
): BodyWant {
  if (status >= 400 || c === undefined) {
    const r = events[0];
    const d = r?.data ?? {};
    return {
      problem: {
        status: d.status,
        title: d.title,
        commandId: d.commandId,
        ...(r?.loose ? {} : { detail: d.detail }),
      },
    };
  }
  switch (c.type) {
    case 'RemoveAgent':
      return { view: { id: c.agentId, removed: true, position } };
    case 'ChangeSettings': {
      const changed = events.find((x) => x.type === 'SettingsChanged');
      return { view: changed && { ...changed.data, position } };
    }
    case 'ForgetContacts': {
      const gone = events.find((x) => x.type === 'ContactsForgotten')?.data.contactIds;
      return { view: { forgotten: Array.isArray(gone) ? gone.length : 0, position } };
    }
  }
  if (events.length === 0 && TIMER_COMMANDS.has(c.type)) return { view: { current: false, position } };
  const target = commandTarget(c);
  if (target.kind === 'agent') {
    const a = s.state.agents.get(target.id);
    return {
      view: a && documentOf(s.lastDocument, a, s.agentPositions.get(target.id) ?? '', agentDocument),
    };
  }
  const contact = s.state.contacts.get(target.id);
  const meta = s.contactMeta.get(target.id);
  return {
    view: contact && meta && documentOf(s.lastDocument, contact, meta.position, contactDocument),
  };
}

const PROBLEM_TYPE = /^\/problems\/[a-z0-9-]+$/;

/** How an outcome's body differs from what it must be, if it does. */
export function bodyDifference(body: unknown, want: BodyWant): string | undefined {
  if ('view' in want) {
    if (want.view === undefined) return 'a success, where the replay has no document to answer with';
    // A contact's list written before the bound: held by its last ones, as the dispatcher reads it.
    body = boundedView(body);
    return jsonEqual(body, want.view) ? undefined : `body differs: ${differences(body, want.view)}`;
  }
  if (typeof body !== 'object' || body === null) return 'its problem body is not an object';
  const b = body as Record<string, unknown>;
  const p = want.problem;
  const wrong: string[] = [];
  if (typeof b.type !== 'string' || !PROBLEM_TYPE.test(b.type)) wrong.push(`type ${JSON.stringify(b.type)}`);
  for (const k of ['status', 'title', 'detail', 'commandId'] as const)
    if (k in p && b[k] !== p[k])
      wrong.push(`${k}: log ${JSON.stringify(b[k])}, model ${JSON.stringify(p[k])}`);
  return wrong.length > 0 ? `problem body differs: ${wrong.join('; ')}` : undefined;
}
