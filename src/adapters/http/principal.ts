/**
 * Who is calling: the API key a request was authenticated with (src/adapters/http/auth.ts sets it).
 * Undefined when authentication is off (AUTH=off) or on routes open to everyone (/health, /status).
 */
export type Role = 'admin' | 'integration' | 'supervisor' | 'auditor' | 'agent';

export interface Principal {
  /** The key's public id (never the secret): it goes into every event's meta as `keyId`. */
  readonly keyId: string;
  readonly workspace: string;
  readonly role: Role;
  /** For the `agent` role: the one agent this key acts for. */
  readonly agentId?: string;
  /**
   * Authenticated by a WebSocket ticket (`?ticket=`), not by the key itself: the ticket's request
   * spent the key's rate budget, so its one upgrade spends none (src/adapters/http/limits.ts).
   */
  readonly byTicket?: true;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}
