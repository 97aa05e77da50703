/**
 * Mistakes in what a caller gives that no try gets past, thrown as such:
 *
 * - a live feed of a client whose workspace is `.` or `..` (a dot segment, which `ws` drops as any
 *   URL parser does) sent its upgrade to another route (`GET /v1/events/live`) and ended with that
 *   route's 404; of a workspace '' it ended with the server's 400. Only by ticket was it the
 *   TypeError every call of such a client is (the ticket request's). Now it is a TypeError, before
 *   anything is sent, by header as by ticket, retryFirst or not.
 * - `getStatsIntervals({from: new Date(NaN), ...})` (a Date parsed from nothing) threw a RangeError
 *   ("Invalid time value") synchronously, out of a method that returns a promise: a caller's
 *   `.catch` never saw it. Now the call rejects with a TypeError naming `from` or `to`, nothing sent.
 * - a command answered with a 2xx JSON document that is no command's outcome (a proxy's or a stub's
 *   `{"ok": true}`, an array) was handed on as `applied: true` at position "undefined" (a 202 as
 *   pending with commandId "undefined"): a `minPosition` of it is refused, and the caller never
 *   learns the command may not have landed. Now it is a SwitchboardError with the status and the
 *   text, naming the call's Idempotency-Key (to send it again with).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SwitchboardClient, SwitchboardError } from 'switchboard/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientFixture, startClientFixture } from './fixture.ts';

const WS = 'client-edges-7';
let p: ClientFixture;
beforeAll(async () => {
  p = await startClientFixture([WS]);
}, 30_000);
afterAll(async () => p?.stop());

describe('a live feed of a workspace that cannot be in a URL path', () => {
  it('ends at once with a TypeError naming it, by header or ticket, retryFirst or not', async () => {
    for (const ws of ['.', '..', ''])
      for (const auth of ['header', 'ticket'] as const)
        for (const retryFirst of [false, true]) {
          const what = `workspace "${ws}" by ${auth}${retryFirst ? ', retryFirst' : ''}`;
          const sent: string[] = [];
          const errors: Error[] = [];
          const c = p.client(WS, {
            workspace: ws,
            fetch: (url, init) => {
              sent.push(`${init?.method} ${url}`);
              return fetch(url, init);
            },
          });
          const sub = c.subscribeLive(
            { auth, retryFirst, backoffMs: 50, onError: (e) => errors.push(e) },
            () => {
              throw new Error(`${what}: an event`);
            },
          );
          const err = await sub.ready.then(
            () => new Error(`${what}: opened`),
            (e: unknown) => e as Error,
          );
          await sub.ended;
          expect(err, what).toBeInstanceOf(TypeError);
          expect(err, what).not.toBeInstanceOf(SwitchboardError);
          expect(err.message, what).toMatch(
            ws === ''
              ? /: an empty workspace cannot be sent in a URL path \(workspaces are 1\.\.64 characters\)/
              : new RegExp(`an id "${ws.replace(/\./g, '\\.')}" cannot be sent`),
          );
          expect(errors, what).toEqual([err]);
          expect(sent, what).toEqual([]);
          expect(sub.reconnects, what).toBe(0);
          sub.close();
        }
  });
});

describe('getStatsIntervals with an Invalid Date', () => {
  it('rejects with a TypeError naming the end of the range, nothing sent', async () => {
    for (const end of ['from', 'to'] as const) {
      const sent: string[] = [];
      const c = p.client(WS, {
        fetch: (url, init) => {
          sent.push(`${init?.method} ${url}`);
          return fetch(url, init);
        },
      });
      const range = { from: new Date(Date.now() - 3_600_000), to: new Date(), [end]: new Date(Number.NaN) };
      let call: Promise<unknown> | undefined;
      let thrown: unknown;
      try {
        call = c.getStatsIntervals(range);
      } catch (e) {
        thrown = e;
      }
      expect(thrown, `${end}: thrown out of the call, not its rejection`).toBeUndefined();
      const err = await call!.then(
        () => new Error(`${end}: answered`),
        (e: unknown) => e as Error,
      );
      expect(err, end).toBeInstanceOf(TypeError);
      expect(err.message, end).toMatch(new RegExp(`the range's ${end} is an Invalid Date`));
      expect(sent, end).toEqual([]);
    }
    // A valid range is answered, its Dates sent as ISO strings.
    const ok = await p
      .client(WS)
      .getStatsIntervals({ from: new Date(Date.now() - 3_600_000), to: new Date() });
    expect(ok.intervals.length).toBeGreaterThan(0);
  });
});

describe('a command answered with a JSON document that is no outcome', () => {
  it('is a SwitchboardError naming its key, not applied at position "undefined"', async () => {
    // In front of Switchboard, something that answers every request itself (a portal, a stub).
    const answers: Record<string, [number, string]> = {
      '/v1/workspaces/w/contacts': [200, '{"ok":true}'],
      '/v1/workspaces/w/agents': [201, '[]'],
      '/v1/workspaces/w/settings': [202, '{"accepted":true}'],
      '/v1/workspaces/w/agents/ana/state': [202, '{"position":"1-0"}'],
    };
    const server: Server = createServer((req, res) => {
      const [status, text] = answers[req.url ?? ''] ?? [404, '{}'];
      req.resume();
      req.on('end', () => res.writeHead(status, { 'content-type': 'application/json' }).end(text));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const c = new SwitchboardClient({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        workspace: 'w',
        key: 'sb_x_y',
      });
      const cases: [string, () => Promise<unknown>, number, RegExp][] = [
        [
          'queueContact 200 {"ok":true}',
          () => c.queueContact({ id: 'c1', skills: ['A'] }, { idempotencyKey: 'k-1' }),
          200,
          /no position\): \{"ok":true\}/,
        ],
        [
          'registerAgent 201 []',
          () => c.registerAgent({ id: 'ana', skills: ['A'] }, { idempotencyKey: 'k-2' }),
          201,
          /no position\): \[\]/,
        ],
        [
          'putSettings 202 {"accepted":true}',
          () => c.putSettings({ wrapUpMs: 0 }, { idempotencyKey: 'k-3' }),
          202,
          /no position/,
        ],
        [
          'setAgentState 202 without commandId',
          () => c.setAgentState('ana', 'available', { idempotencyKey: 'k-4' }),
          202,
          /no commandId/,
        ],
      ];
      for (const [what, call, status, detail] of cases) {
        const err = await call().then(
          (r) => new Error(`${what}: handed on as ${JSON.stringify(r)}`),
          (e: unknown) => e as Error,
        );
        expect(err, what).toBeInstanceOf(SwitchboardError);
        const e = err as SwitchboardError;
        expect(e.status, what).toBe(status);
        expect(e.detail, what).toMatch(detail);
        expect(e.idempotencyKey, what).toMatch(/^k-\d$/);
      }
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it("Switchboard's own outcomes are handed on, 202 included", async () => {
    const c = p.client(WS, { timeoutMs: 5_000 });
    const made = await c.registerAgent({ id: 'edges-7-ana', skills: ['A'] });
    expect(made.applied).toBe(true);
    expect(made.position).toMatch(/^\d+-\d+$/);
    const removed = await c.removeAgent('edges-7-ana');
    expect(removed.applied && removed.value.removed).toBe(true);
  });
});
