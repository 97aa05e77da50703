/**
 * docs/API.md states what a workspace name is, as the server checks it (src/domain/values.ts
 * WorkspaceId, the OpenAPI's `ws` parameter, WORKSPACES in the configuration): 1..64 characters of
 * `[A-Za-z0-9_-]`, told apart by case. Before, the contract named no rule: only that a name "no
 * workspace can have" is a 400. The names keep Redis Cluster's hash tag whole: no `{` nor `}`.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openapi } from '../../src/adapters/http/openapi.ts';
import { workspaceKeys } from '../../src/adapters/redis/keys.ts';
import { loadConfig } from '../../src/app/config.ts';
import { WorkspaceId } from '../../src/domain/values.ts';

const api = readFileSync(new URL('../../docs/API.md', import.meta.url), 'utf8');

describe('workspace names', () => {
  it('docs/API.md states the rule the server checks, and that case counts', () => {
    const words = api.slice(api.indexOf('## Words'), api.indexOf('\n## ', api.indexOf('## Words') + 1));
    const bullet = words.split('\n- ').find((b) => b.startsWith('**workspace**')) ?? '';
    expect(bullet).toContain('1..64 characters of `[A-Za-z0-9_-]`');
    expect(bullet).toMatch(/`Acme` and `acme` are two workspaces/);
    expect(WorkspaceId.is('a'.repeat(64))).toBe(true);
    expect(WorkspaceId.is('a'.repeat(65))).toBe(false);
    expect(WorkspaceId.is('')).toBe(false);
    for (const bad of ['a{b', 'a}b', '{a}', 'a:b', 'a.b', 'a b', 'é'])
      expect(WorkspaceId.is(bad), bad).toBe(false);
    expect(JSON.stringify(openapi)).toContain('"pattern":"^[A-Za-z0-9_-]{1,64}$"');
    expect(() => loadConfig({ WORKSPACES: 'a{b}' })).toThrow(/not a workspace name/);
  });

  it("a name's keys all carry one hash tag, the name itself", () => {
    const k = workspaceKeys('Ab_1-z');
    for (const [field, key] of Object.entries(k)) {
      if (field === 'workspace') continue;
      expect(key.match(/\{[^}]*\}/g), key).toEqual(['{Ab_1-z}']);
    }
  });
});
