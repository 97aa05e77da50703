import { type Agent, type Contact, type Fact, type Workspace, withAvailability } from '../domain/model.ts';
import { RoutingGroups } from '../domain/routing-groups.ts';

/**
 * A workspace that the auditor changes in place. `evolve` returns a new workspace with copied
 * Maps on every fact (O(agents + contacts) each), which a replay of millions of events cannot
 * afford. `apply` makes the same change as `evolve` (the same records, built by the same rules:
 * `withAvailability` for agents) and keeps the routing groups in step, so `decide` can be called
 * on this state directly and rule 1 costs about the number of skill sets. The property test in
 * test/audit holds `apply` and `evolve` side by side on random command sequences.
 */
export class ReplayState implements Workspace {
  readonly agents = new Map<string, Agent>();
  readonly contacts = new Map<string, Contact>();
  seq = 0;
  readonly finished = new Map<string, number>();
  readonly routing = new RoutingGroups();

  apply(f: Fact): void {
    switch (f.type) {
      case 'AgentRegistered':
      case 'AgentUpdated':
      case 'AgentStateChanged':
        this.putAgent(f.agent);
        return;
      case 'AgentRemoved':
        this.agents.delete(f.agentId);
        this.routing.removeAgent(f.agentId);
        return;
      case 'ContactQueued':
        this.seq = f.contact.seq;
        this.putContact(f.contact);
        return;
      case 'ContactAbandoned':
        this.changeContact(f.contactId, (c) => ({ ...c, state: 'abandoned', abandonedAt: f.at }));
        if (this.contacts.has(f.contactId)) this.finished.set(f.contactId, f.at);
        return;
      case 'ContactsForgotten':
        for (const id of f.contactIds) {
          this.routing.removeContact(id);
          this.contacts.delete(id);
          this.finished.delete(id);
        }
        return;
      case 'ContactCompleted':
        this.changeContact(f.contactId, (c) => ({ ...c, state: 'completed', completedAt: f.at }));
        if (this.contacts.has(f.contactId)) this.finished.set(f.contactId, f.at);
        this.changeAgent(f.agentId, f.at, (a) => ({
          ...a,
          activeContacts: a.activeContacts.filter((id) => id !== f.contactId),
        }));
        return;
      case 'AssignmentMade':
        this.changeContact(f.contactId, (c) => ({
          ...c,
          state: 'assigned',
          agentId: f.agentId,
          assignedAt: f.at,
        }));
        this.changeAgent(f.agentId, f.at, (a) => ({
          ...a,
          activeContacts: [...a.activeContacts, f.contactId],
        }));
        return;
    }
  }

  private putAgent(a: Agent): void {
    this.agents.set(a.id, a);
    this.routing.setAgent(a);
  }

  private putContact(c: Contact): void {
    this.contacts.set(c.id, c);
    this.routing.setContact(c);
  }

  private changeContact(id: string, change: (c: Contact) => Contact): void {
    const c = this.contacts.get(id);
    if (c) this.putContact(change(c));
  }

  private changeAgent(id: string, at: number, change: (a: Agent) => Agent): void {
    const a = this.agents.get(id);
    if (a) this.putAgent(withAvailability(a, change(a), at));
  }
}
