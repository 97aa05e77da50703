import { accessOf } from '../adapters/http/auth.ts';
import { COMMAND_TYPES } from '../domain/commands.ts';
import type { CommandEntry } from './entries.ts';

const WS = '/v1/workspaces/:ws';

/** The route that appends each command type a client may send (src/adapters/http/commands.ts). */
const ROUTE_OF: Readonly<Record<string, readonly [method: string, url: string]>> = {
  RegisterAgent: ['POST', `${WS}/agents`],
  UpdateAgent: ['PATCH', `${WS}/agents/:id`],
  RemoveAgent: ['DELETE', `${WS}/agents/:id`],
  ChangeAgentState: ['POST', `${WS}/agents/:id/state`],
  QueueContact: ['POST', `${WS}/contacts`],
  AbandonContact: ['POST', `${WS}/contacts/:id/abandon`],
  TransferContact: ['POST', `${WS}/contacts/:id/transfer`],
  CompleteContact: ['POST', `${WS}/contacts/:id/complete`],
  AcceptOffer: ['POST', `${WS}/contacts/:id/accept`],
  RejectOffer: ['POST', `${WS}/contacts/:id/reject`],
  ChangeSettings: ['PUT', `${WS}/settings`],
};

/** Every other command is the clock's (the dispatcher role) or the archiver's: never with a key. */
const INTERNAL = new Set<string>(COMMAND_TYPES.filter((t) => ROUTE_OF[t] === undefined));

/**
 * The commands an `agent` key sends for the agent the command names, which must be its own (the
 * API refuses another with 403). A `CompleteContact` names its agent since the projector checks it
 * (a contact may leave the agent between the API's check and the command's turn); one appended
 * before that names none, and is not held to it.
 */
const FOR_ITS_AGENT = new Set(['ChangeAgentState', 'AcceptOffer', 'RejectOffer', 'CompleteContact']);
const NAMED_SINCE = new Set(['CompleteContact']);

/**
 * Why a command could not have been appended by whom it names (docs/SECURITY.md, "API keys and
 * roles", the table the API enforces): a client's command sent with a key whose role may not send
 * it, or the clock's or the archiver's with a key at all. A command with no key (AUTH off) names
 * nobody. `keyAgents`: the agent each `agent` key of the workspace is bound to (key id → agent id);
 * a command of such a key naming another agent is reported too.
 */
export function accessProblem(e: CommandEntry, keyAgents?: ReadonlyMap<string, string>): string | undefined {
  if (INTERNAL.has(e.type))
    return e.keyId !== undefined || e.role !== undefined
      ? `${e.type} is appended by the clock or the archiver only, yet names API key ${e.keyId ?? '?'} (${e.role ?? '?'})`
      : undefined;
  const route = ROUTE_OF[e.type];
  if (route === undefined || e.role === undefined) return undefined;
  const roles: readonly string[] = accessOf(...route)?.roles ?? [];
  if (!roles.includes(e.role))
    return `${e.type} names API key ${e.keyId ?? '?'} of role ${e.role}, which may not send it (${roles.join(', ')} may)`;
  const bound = e.role === 'agent' && e.keyId !== undefined ? keyAgents?.get(e.keyId) : undefined;
  if (bound === undefined || !FOR_ITS_AGENT.has(e.type)) return undefined;
  const named = commandAgent(e.command);
  if (named === undefined && NAMED_SINCE.has(e.type)) return undefined;
  return named === bound
    ? undefined
    : `${e.type} for agent "${String(named)}" names API key ${e.keyId} of role agent, bound to agent "${bound}": it acts for its own agent only`;
}

function commandAgent(text: string | undefined): unknown {
  try {
    return (JSON.parse(text ?? '{}') as { agentId?: unknown }).agentId;
  } catch {
    return undefined; // a malformed entry is reported as such
  }
}
