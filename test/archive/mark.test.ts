/**
 * The archive's mark only moves forward: a trim for an older segment (an archiver that kept going
 * after it lost its lease, while another took the workspace further) changes nothing.
 */
import { describe, expect, it } from 'vitest';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { trimAndMark } from '../../src/archive/archiver.ts';
import { parseAnchor } from '../../src/archive/chain.ts';
import { suiteRedis } from '../support/redis.ts';

describe('the archive mark', () => {
  const suite = suiteRedis();

  it('never moves back, and an older trim removes nothing more', async () => {
    const ws = `mark-${Date.now().toString(36)}`;
    const k = workspaceKeys(ws);
    const r = suite.redis;
    const ids: string[] = [];
    for (let i = 1; i <= 30; i++) ids.push((await r.xadd(k.events, `1700000000000-${i}`, 'n', String(i)))!);
    const segment = (index: number, last: number) => ({
      index,
      last: ids[last - 1]!,
      hash: `h${index}`,
      total: last,
    });

    expect(await trimAndMark(r, ws, 'events', segment(0, 10))).toBe(true);
    expect(await trimAndMark(r, ws, 'events', segment(1, 20))).toBe(true);
    expect(await r.xlen(k.events)).toBe(10);
    // A late archiver with the first segment: the mark stays at the second, nothing is trimmed.
    expect(await trimAndMark(r, ws, 'events', segment(0, 10))).toBe(false);
    expect(parseAnchor(await r.hget(k.archive, 'events'))).toMatchObject({ index: 1, last: ids[19] });
    // The same segment again: already marked.
    expect(await trimAndMark(r, ws, 'events', segment(1, 20))).toBe(false);
    expect(await r.xlen(k.events)).toBe(10);
    // The other stream's mark is its own.
    expect(await r.hget(k.archive, 'commands')).toBeNull();
  });
});
