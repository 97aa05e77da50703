/**
 * The projector process SIGKILLed while API requests wait for their commands' outcomes (an API of
 * its own, ROLES=api): a request whose projector comes back within COMMAND_TIMEOUT_MS is answered
 * 201 with the command applied; one whose projector does not is answered 202 (never a wrong
 * outcome), and its command applies once a projector runs again.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { auditWorkspace } from '../../src/audit/read.ts';
import { inProcessApi } from '../support/api.ts';
import { killAllProcesses, type SwitchboardProcess, startProcess } from '../support/processes.ts';
import { sleep } from '../support/wait.ts';

const WS = 'robust-4';
// Time for a projector process to start and apply the waiting command (about 0.5 s on a quiet
// machine; 2.5 s was outlasted twice with the machine's two cores loaded).
const api = inProcessApi([WS], { env: { ROLES: 'api', COMMAND_TIMEOUT_MS: '6000' } });

afterAll(killAllProcesses);

describe('a projector killed while a request waits', () => {
  it('answers 201 when a projector is back in time, 202 when not; each command applied once', async () => {
    const env = { WORKSPACES: WS, DISCOVER_WORKSPACES: 'false', AUTH: 'off' };
    const start = () => startProcess({ roles: 'projector', redis: api.server, env, name: 'projector' });
    let projector: SwitchboardProcess = await start();
    expect((await api.call('POST', `/v1/workspaces/${WS}/agents`, { id: 'ana', skills: ['A'] })).status).toBe(
      201,
    );

    projector.kill('SIGKILL');
    await projector.exited;
    const waiting = api.call('POST', `/v1/workspaces/${WS}/contacts`, {
      id: 'c1',
      skills: ['A'],
      priority: 0,
    });
    await sleep(200);
    projector = await start();
    const answered = await waiting;
    expect(answered.status, JSON.stringify(answered.body)).toBe(201);
    expect(answered.body.id).toBe('c1');

    projector.kill('SIGKILL');
    await projector.exited;
    const late = await api.call('POST', `/v1/workspaces/${WS}/contacts`, {
      id: 'c2',
      skills: ['A'],
      priority: 0,
    });
    expect(late.status, JSON.stringify(late.body)).toBe(202);
    projector = await start();
    const c2 = await api.until(WS, '/contacts/c2', (v) => v.id === 'c2', 8000);
    expect(c2.state).toBe('queued');
    const report = await auditWorkspace(api.running.redis, WS, { idle: true });
    expect(report.violations).toEqual([]);
    await projector.stop();
  }, 30_000);
});
