/** answers of commands that change nothing, and 202s: the result's position is a real position. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientFixture, startClientFixture } from './fixture.ts';

const WS = 'client-noop';
let p: ClientFixture;
beforeAll(async () => {
  p = await startClientFixture([WS]);
}, 30_000);
afterAll(async () => p?.stop());

describe('no-op commands', () => {
  it('setting the state an agent is in: a position usable as minPosition', async () => {
    const c = p.client(WS);
    await c.registerAgent({ id: 'n1', skills: ['s'] });
    await c.setAgentState('n1', 'away');
    const again = await c.setAgentState('n1', 'away');
    console.log(JSON.stringify(again));
    expect(again.position).toMatch(/^\d+-\d+$/);
    await c.getAgent('n1', { minPosition: again.position });
    const s = await c.putSettings({});
    const s2 = await c.putSettings({});
    console.log(JSON.stringify(s2));
    expect(s.position).toMatch(/^\d+-\d+$/);
    expect(s2.position).toMatch(/^\d+-\d+$/);
  });
});
