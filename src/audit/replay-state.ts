import {
  type Agent,
  applyFact,
  type Contact,
  DEFAULT_SETTINGS,
  type Fact,
  type Settings,
  type Workspace,
  type WorkspaceWriter,
} from '../domain/model.ts';
import { RoutingGroups } from '../domain/routing-groups.ts';

/**
 * A workspace that the auditor changes in place. `evolve` returns a new workspace with copied
 * Maps on every fact (O(agents + contacts) each), which a replay of millions of events cannot
 * afford. `apply` makes the same change as `evolve` (both run the model's `applyFact`, which
 * states each fact's effect once) and keeps the routing groups in step, so `decide` can be called
 * on this state directly and rule 1 costs about the number of skill sets. The property test in
 * test/audit holds `apply` and `evolve` side by side on random command sequences.
 */
export class ReplayState implements Workspace, WorkspaceWriter {
  readonly agents = new Map<string, Agent>();
  readonly contacts = new Map<string, Contact>();
  seq = 0;
  tick: number | undefined = undefined;
  readonly finished = new Map<string, number>();
  settings: Settings = DEFAULT_SETTINGS;
  readonly routing = new RoutingGroups();

  apply(f: Fact): void {
    applyFact(this, f);
  }

  putAgent(a: Agent): void {
    this.agents.set(a.id, a);
    this.routing.setAgent(a);
  }

  deleteAgent(id: string): void {
    this.agents.delete(id);
    this.routing.removeAgent(id);
  }

  putContact(c: Contact): void {
    this.contacts.set(c.id, c);
    this.routing.setContact(c);
  }

  deleteContact(id: string): void {
    this.routing.removeContact(id);
    this.contacts.delete(id);
    this.finished.delete(id);
  }

  setSeq(seq: number, tick?: number): void {
    this.seq = seq;
    if (tick !== undefined) this.tick = tick;
  }

  setSettings(s: Settings): void {
    this.settings = s;
    this.routing.setSelection(s.agentSelection);
  }

  finish(id: string, at: number): void {
    this.finished.set(id, at);
  }
}
