import type { RoutingIndex } from '../adapters/redis/routing-index.ts';
import { canTakeWork } from '../domain/model.ts';
import type { Auditor } from './auditor.ts';
import { agentDocument, contactDocument, differences, jsonEqual } from './expected.ts';
import type { Violation } from './violations.ts';

/**
 * The end of the audit: the live documents and routing index must be the replayed state. Fed a
 * page of documents at a time (the hashes can be large); mismatches are collected, not reported,
 * until `violations()`: the caller reports them only if the workspace did not move while it read.
 * Documents are compared on their public fields (internal `_` fields dropped, attributes parsed,
 * as src/adapters/redis/documents.ts `publicDocument` does).
 */
export class StateCheck {
  private readonly found: Violation[] = [];
  private readonly seenAgents = new Set<string>();
  private readonly seenContacts = new Set<string>();

  constructor(private readonly audit: Auditor) {}

  private flag(message: string, kind: 'state' | 'index' = 'state'): void {
    this.found.push({ kind, stream: 'state', position: this.audit.lastEvent ?? '0-0', message });
  }

  agent(id: string, doc: Record<string, unknown> | null): void {
    if (this.seenAgents.has(id)) return; // HSCAN may return a field twice
    this.seenAgents.add(id);
    const a = this.audit.state.agents.get(id);
    if (!a) this.flag(`agent ${id} has a document but the replay has no such agent`);
    else if (!doc) this.flag(`agent ${id}: its document cannot be read`);
    else {
      const want = agentDocument(a, this.audit.agentPositions.get(id) ?? '');
      if (!jsonEqual(doc, want)) this.flag(`agent ${id} differs: ${differences(doc, want)}`);
    }
  }

  contact(id: string, doc: Record<string, unknown> | null): void {
    if (this.seenContacts.has(id)) return;
    this.seenContacts.add(id);
    const c = this.audit.state.contacts.get(id);
    if (!c) this.flag(`contact ${id} has a document but the replay has no such contact`);
    else if (!doc) this.flag(`contact ${id}: its document cannot be read`);
    else {
      const want = contactDocument(c, this.audit.contactMeta.get(id)?.position ?? '');
      if (!jsonEqual(doc, want)) this.flag(`contact ${id} differs: ${differences(doc, want)}`);
    }
  }

  index(index: RoutingIndex): void {
    const state = this.audit.state;
    const byId = <T extends object>(xs: T[], id: (x: T) => string) =>
      xs.map((x) => [id(x), JSON.stringify(x)] as const).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const wantAvailable = [...state.agents.values()]
      .filter(canTakeWork)
      .map((a) => ({ agentId: a.id, since: a.availableSince ?? 0 }));
    const wantQueued = [...state.contacts.values()]
      .filter((c) => c.state === 'queued')
      .map((c) => ({ contactId: c.id, priority: c.priority, seq: c.seq }));
    this.compare(
      'available agents',
      byId(index.available, (x) => x.agentId),
      byId(wantAvailable, (x) => x.agentId),
    );
    this.compare(
      'queued contacts',
      byId(index.queued, (x) => x.contactId),
      byId(wantQueued, (x) => x.contactId),
    );
  }

  /** The mismatches found, with documents the replay has and Redis lacks. */
  violations(): Violation[] {
    const s = this.audit.state;
    for (const id of s.agents.keys()) if (!this.seenAgents.has(id)) this.flag(`agent ${id} has no document`);
    for (const id of s.contacts.keys())
      if (!this.seenContacts.has(id)) this.flag(`contact ${id} has no document`);
    return this.found;
  }

  /** Two lists of [id, entry JSON] sorted by id: each difference named (the first few). */
  private compare(
    what: string,
    got: readonly (readonly [string, string])[],
    want: readonly (readonly [string, string])[],
  ) {
    const log = new Map(got);
    const model = new Map(want);
    const diffs: string[] = [];
    for (const [id, entry] of want) {
      const g = log.get(id);
      if (g === undefined) diffs.push(`${id} missing (the replay has ${entry})`);
      else if (g !== entry) diffs.push(`${id}: index ${g}, the replay ${entry}`);
    }
    for (const [id, entry] of got) if (!model.has(id)) diffs.push(`${id} should not be there (${entry})`);
    if (got.length !== log.size) diffs.push(`${got.length - log.size} entries listed twice`);
    if (diffs.length > 0)
      this.flag(
        `routing index, ${what}: ${diffs.slice(0, 5).join('; ')}${diffs.length > 5 ? `; and ${diffs.length - 5} more` : ''}`,
        'index',
      );
  }
}
