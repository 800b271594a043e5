/**
 * Assertions for tests: the project's stand-in for jsr:@std/assert.
 *
 * JSR is unreachable from our machines, so @std/assert cannot be installed. This module wraps
 * `node:assert/strict` under @std/assert's names, so a later switch is a one-line change here.
 *
 * @module
 */
import nodeAssert from "node:assert/strict";

export function assert(condition: unknown, msg?: string): asserts condition {
  nodeAssert.ok(condition, msg);
}

export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, msg);
}

export function assertNotEquals<T>(actual: T, expected: T, msg?: string): void {
  nodeAssert.notDeepStrictEqual(actual, expected, msg);
}

/** Asserts |actual - expected| <= tolerance (absolute), with a message that shows both. */
export function assertAlmostEquals(
  actual: number,
  expected: number,
  tolerance = 1e-7,
  msg?: string,
): void {
  const ok = Number.isFinite(actual) && Math.abs(actual - expected) <= tolerance;
  nodeAssert.ok(
    ok,
    msg ?? `Expected ${actual} to be within ${tolerance} of ${expected}`,
  );
}

/** Element-wise assertAlmostEquals over two arrays of equal length. */
export function assertAllClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance = 1e-5,
  msg?: string,
): void {
  nodeAssert.equal(actual.length, expected.length, msg ?? "Lengths differ");
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    const scale = Math.max(1, Math.abs(e));
    if (!(Math.abs(a - e) <= tolerance * scale)) {
      nodeAssert.fail(
        `${msg ? msg + ": " : ""}element ${i}: ${a} differs from ${e} by more than ${tolerance}`,
      );
    }
  }
}

export function assertThrows(
  fn: () => unknown,
  pattern?: RegExp,
  msg?: string,
): void {
  nodeAssert.throws(fn, pattern ?? Error, msg);
}

export async function assertRejects(
  fn: () => Promise<unknown>,
  pattern?: RegExp,
  msg?: string,
): Promise<void> {
  await nodeAssert.rejects(fn, pattern ?? Error, msg);
}

export function assertMatch(actual: string, expected: RegExp, msg?: string): void {
  nodeAssert.match(actual, expected, msg);
}

export function assertGreater(actual: number, expected: number, msg?: string): void {
  nodeAssert.ok(actual > expected, msg ?? `Expected ${actual} > ${expected}`);
}

export function assertLess(actual: number, expected: number, msg?: string): void {
  nodeAssert.ok(actual < expected, msg ?? `Expected ${actual} < ${expected}`);
}
