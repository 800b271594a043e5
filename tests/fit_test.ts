import { assert, assertAlmostEquals, assertEquals, assertMatch, assertThrows } from "./assert.ts";
import { agreesWithPaper, fitPowerLaw, powerLawAt, type PowerLawFit } from "../mod/fit.ts";
import { Rng } from "../mod/rng.ts";

const SIZES = [512, 1024, 2048, 4096, 8192, 16384];

Deno.test("fitPowerLaw() recovers y = 3·x^-1 exactly, with R² = 1 and a zero-width interval", () => {
  const fit = fitPowerLaw(SIZES, SIZES.map((x) => 3 / x));
  assertAlmostEquals(fit.slope, -1, 1e-12);
  assertAlmostEquals(fit.intercept, Math.log10(3), 1e-12);
  assertAlmostEquals(fit.r2, 1, 1e-12);
  assertEquals(fit.n, 6);
  assertAlmostEquals(fit.ci.low, -1, 1e-12);
  assertAlmostEquals(fit.ci.high, -1, 1e-12);
  assertEquals(fit.ci.resamples, 1000);
  assertEquals(fit.ci.used + fit.ci.skipped, 1000);
  assertEquals(fit.ci.level, 0.95);
  assertAlmostEquals(powerLawAt(fit, 1000), 3e-3, 1e-15);
});

Deno.test("fitPowerLaw() on noisy data lands near the true slope with an interval that covers it", () => {
  const rng = new Rng(7);
  const x = Array.from({ length: 30 }, (_, i) => 2 ** (6 + i * 0.3));
  const y = x.map((v) => 3 * v ** -1 * 10 ** (0.05 * rng.normal()));
  const fit = fitPowerLaw(x, y, { seed: 3 });
  assertAlmostEquals(fit.slope, -1, 0.03);
  assertAlmostEquals(fit.intercept, Math.log10(3), 0.1);
  assert(fit.r2 > 0.95 && fit.r2 < 1, `R² ${fit.r2} is high but not exact`);
  assert(fit.ci.low < -1 && -1 < fit.ci.high, `CI [${fit.ci.low}, ${fit.ci.high}] covers -1`);
  assert(fit.ci.high - fit.ci.low < 0.1, "30 points give a narrow interval");
  assertEquals(fit.ci.skipped, 0);
});

Deno.test("fitPowerLaw() bootstrap is deterministic for a seed and changes with it", () => {
  const rng = new Rng(1);
  const y = SIZES.map((x) => x ** -0.8 * 10 ** (0.1 * rng.normal()));
  const a = fitPowerLaw(SIZES, y, { seed: 5 }), b = fitPowerLaw(SIZES, y, { seed: 5 });
  const c = fitPowerLaw(SIZES, y, { seed: 6 });
  assertEquals(a.ci, b.ci);
  assert(a.ci.low !== c.ci.low || a.ci.high !== c.ci.high, "another seed draws other resamples");
  const narrow = fitPowerLaw(SIZES, y, { seed: 5, ci: 0.5 });
  assert(narrow.ci.low > a.ci.low && narrow.ci.high < a.ci.high, "a 50% interval is inside 95%");
});

Deno.test("fitPowerLaw() skips resamples whose x are all equal and says how many it used", () => {
  const fit = fitPowerLaw([10, 100], [1, 0.1], { bootstrap: 400, seed: 2 });
  // With two points half the resamples draw the same point twice.
  assert(fit.ci.skipped > 150 && fit.ci.skipped < 250, `skipped ${fit.ci.skipped} of 400`);
  assertEquals(fit.ci.used + fit.ci.skipped, 400);
  assertAlmostEquals(fit.ci.low, -1, 1e-12);
  const none = fitPowerLaw([10, 100], [1, 0.1], { bootstrap: 0 });
  assertEquals(none.ci.used, 0);
  assert(Number.isNaN(none.ci.low), "no resample, no interval");
});

Deno.test("fitPowerLaw() rejects non-positive, non-finite and degenerate input by value and index", () => {
  assertThrows(() => fitPowerLaw([1, 2, 3], [1, 2, 0]), /y\[2\] is 0/);
  assertThrows(() => fitPowerLaw([1, -2, 3], [1, 2, 3]), /x\[1\] is -2/);
  assertThrows(() => fitPowerLaw([1, 2], [NaN, 2]), /y\[0\] is NaN/);
  assertThrows(() => fitPowerLaw([1, Infinity], [1, 2]), /x\[1\] is Infinity/);
  assertThrows(() => fitPowerLaw([1, 2], [1]), /got 2 x and 1 y/);
  assertThrows(() => fitPowerLaw([4], [1]), /at least 2 points, got 1/);
  assertThrows(() => fitPowerLaw([4, 4, 4], [1, 2, 3]), /two distinct x values, every x is 4/);
  assertThrows(() => fitPowerLaw([1, 2], [1, 2], { ci: 1 }), /Confidence level 1/);
});

Deno.test("agreesWithPaper() says consistent, close, differs or inconclusive", () => {
  const exact = fitPowerLaw(SIZES, SIZES.map((x) => 3 / x));
  assertMatch(agreesWithPaper(exact), /^consistent with the paper: slope -1 \(95% CI -1 to -1/);
  const half = fitPowerLaw(SIZES, SIZES.map((x) => x ** -0.5));
  assertMatch(agreesWithPaper(half), /^differs from the paper: .* excludes -1 by 0.5$/);
  const near: PowerLawFit = {
    slope: -0.95,
    intercept: 0,
    r2: 0.99,
    n: 6,
    ci: { level: 0.95, low: -0.97, high: -0.93, resamples: 1000, used: 1000, skipped: 0 },
  };
  assertMatch(agreesWithPaper(near), /^close to the paper: .* within 0.1 of it \(gap 0.05\)$/);
  assertMatch(agreesWithPaper(near, { tolerance: 0.01 }), /^differs/);
  const two = fitPowerLaw([512, 1024], [0.5, 0.25]);
  assertMatch(agreesWithPaper(two), /^inconclusive: .*n = 2/);
  const flat = fitPowerLaw(SIZES, SIZES.map(() => 400));
  assertEquals(flat.r2, 1);
  assertMatch(agreesWithPaper(flat, { expected: 0 }), /^consistent .* covers 0$/);
});
