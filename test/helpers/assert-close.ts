/** Test helper: element-wise closeness relative to the largest magnitude of the expected values. */
import { strict as assert } from 'node:assert';

/** same length, and max |actual - expected| <= rel x max(max |expected|, 1e-6) */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rel: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let ref = 0;
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    ref = Math.max(ref, Math.abs(expected[i]));
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  }
  assert.ok(worst <= rel * Math.max(ref, 1e-6), `${what}: max abs diff ${worst} > ${rel} x ${ref}`);
}
