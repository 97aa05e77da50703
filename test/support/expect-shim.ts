/**
 * A stand-in for `vitest`'s `expect` in scripts run with plain `node --import tsx` (vitest's own
 * `expect` needs the test runner's worker state). Built, like vitest's, from `@vitest/expect` on
 * chai, so assertions and their messages are the same. `audit-cli.ts` maps the `vitest` import of
 * `audit.ts` to this module.
 */
import {
  type ExpectStatic,
  GLOBAL_EXPECT,
  JestAsymmetricMatchers,
  JestChaiExpect,
  JestExtend,
  setState,
} from '@vitest/expect';
import * as chai from 'chai';

chai.use(JestExtend);
chai.use(JestChaiExpect);
chai.use(JestAsymmetricMatchers);

export const expect = ((value: unknown, message?: string) => chai.expect(value, message)) as unknown as (
  value: unknown,
  message?: string,
) => Chai.Assertion;

setState({ assertionCalls: 0, isExpectingAssertions: false }, expect as unknown as ExpectStatic);
Object.defineProperty(globalThis, GLOBAL_EXPECT, { value: expect, writable: true, configurable: true });
