/**
 * The OpenAPI document (src/adapters/http/openapi.ts, served at /openapi.json) under a standard
 * linter: Redocly's recommended rules report no error, and one warning only, which is the
 * protocol's: the live feed's WebSocket upgrade answers 101, never a 2xx. Every operation has a
 * unique operationId (generated clients name their methods after it).
 */
import { createConfig, lintFromString } from '@redocly/openapi-core';
import { describe, expect, it } from 'vitest';
import { openapi } from '../../src/adapters/http/openapi.ts';

describe('the OpenAPI document', () => {
  it("passes Redocly's recommended rules", async () => {
    const config = await createConfig({ extends: ['recommended'] });
    const problems = await lintFromString({
      source: JSON.stringify(openapi),
      absoluteRef: '/openapi.json',
      config,
    });
    const seen = problems.map((p) => `${p.severity} ${p.ruleId} ${p.location[0]?.pointer ?? ''}`);
    expect(seen).toEqual([
      'warn operation-2xx-response #/paths/~1v1~1workspaces~1{ws}~1events~1live/get/responses',
    ]);
  });

  it('names every operation, each name once', () => {
    const ids = Object.values(openapi.paths).flatMap((item) =>
      Object.entries(item as Record<string, { operationId?: string }>)
        .filter(([method]) => method !== 'parameters')
        .map(([, op]) => op.operationId),
    );
    expect(ids.length).toBeGreaterThan(40);
    expect(ids.every((id) => typeof id === 'string' && /^[a-z][A-Za-z]+$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
