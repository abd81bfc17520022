import type { ContractViolation } from '../../kit/contract/openapi-contract';
import type { RunningSandbox } from '../server';

/**
 * Asserts that the contract violations recorded since the last take are exactly `expected` (each a partial
 * violation, in order), and clears them. Tests that send a deliberately off-contract request use it, so the
 * `afterEach` check (`takeContractViolations()` is empty) still holds for everything else they do.
 */
export function expectViolations(sandbox: RunningSandbox, expected: Array<Partial<ContractViolation>>): void {
  expect(sandbox.takeContractViolations()).toEqual(expected.map((violation) => expect.objectContaining(violation)));
}
