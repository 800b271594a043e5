import { assert, assertAlmostEquals, assertEquals, assertMatch, assertThrows } from "./assert.ts";
import {
  lineBand,
  meanInterval,
  olsFit,
  studentTCdf,
  studentTQuantile,
  trend,
  trendVerdict,
} from "../mod/scaling/mod.ts";
import { analyseScaling, type SaeScalingInput } from "../mod/scaling/mod.ts";
import { Rng } from "../mod/run/mod.ts";

const SIZES = [512, 1024, 2048, 4096, 8192, 16384];

Deno.test("olsFit() gives the textbook slope, intercept, standard errors, R² and t interval", () => {
  // x 1..5, y 2 4 5 4 5: Sxx 10, Sxy 6, SSE 2.4, s² 0.8, SST 6 (worked by hand).
  const fit = olsFit([1, 2, 3, 4, 5], [2, 4, 5, 4, 5]);
  assertAlmostEquals(fit.slope, 0.6, 1e-12);
  assertAlmostEquals(fit.intercept, 2.2, 1e-12);
  assertAlmostEquals(fit.residualSd, Math.sqrt(0.8), 1e-12);
  assertAlmostEquals(fit.se, Math.sqrt(0.08), 1e-12);
  assertAlmostEquals(fit.interceptSe, Math.sqrt(0.8 * (1 / 5 + 9 / 10)), 1e-12);
  assertAlmostEquals(fit.r2, 0.6, 1e-12);
  assertEquals([fit.n, fit.df, fit.level], [5, 3, 0.95]);
  assertAlmostEquals(fit.tCrit, 3.182446305284263, 1e-9);
  assertAlmostEquals(fit.ciLow, 0.6 - 3.182446305284263 * Math.sqrt(0.08), 1e-9);
  assertAlmostEquals(fit.ciHigh, 0.6 + 3.182446305284263 * Math.sqrt(0.08), 1e-9);
  // The band at x̄ is ȳ ± t·s/√n, and widens away from x̄.
  const mid = lineBand(fit, 3);
  assertAlmostEquals(mid.y, 4, 1e-12);
  assertAlmostEquals(mid.high - mid.y, fit.tCrit * Math.sqrt(0.8 / 5), 1e-9);
  assert(lineBand(fit, 6).high - lineBand(fit, 6).y > mid.high - mid.y);
});

Deno.test("olsFit() on an exact line has zero SE; with two points it has no interval", () => {
  const exact = olsFit(SIZES.map(Math.log10), SIZES.map((s) => 1 - 2 * Math.log10(s)));
  assertAlmostEquals(exact.slope, -2, 1e-12);
  assertEquals([exact.se, exact.r2, exact.df], [0, 1, 4]);
  assertAlmostEquals(exact.ciLow, -2, 1e-12);
  const flat = olsFit([1, 2, 3], [0, 0, 0]);
  assertEquals([flat.slope, flat.ciLow, flat.ciHigh, flat.r2], [0, 0, 0, 1]);
  assertEquals(trend(flat), "no detectable trend");
  const two = olsFit([1, 2], [1, 3]);
  assertEquals([two.slope, two.df], [2, 0]);
  assert(Number.isNaN(two.ciLow) && Number.isNaN(two.se), "no residual df, no interval");
  assertEquals(trend(two), "inconclusive");
});

Deno.test("olsFit() rejects mismatched, non-finite and degenerate input by value and index", () => {
  assertThrows(() => olsFit([1, 2], [1]), /got 2 x and 1 y/);
  assertThrows(() => olsFit([1, 2, 3], [1, NaN, 3]), /y\[1\] is NaN/);
  assertThrows(() => olsFit([1, Infinity], [1, 2]), /x\[1\] is Infinity/);
  assertThrows(() => olsFit([4], [1]), /at least 2 points, got 1/);
  assertThrows(() => olsFit([4, 4, 4], [1, 2, 3]), /two distinct x values, every x is 4/);
  assertThrows(() => olsFit([1, 2], [1, 2], { level: 1 }), /Confidence level 1/);
});

Deno.test("studentTQuantile() and studentTCdf() match published t tables", () => {
  const table: [number, number, number][] = [
    [0.975, 1, 12.706204736],
    [0.975, 2, 4.302652730],
    [0.975, 4, 2.776445105],
    [0.975, 10, 2.228138852],
    [0.975, 30, 2.042272456],
    [0.95, 5, 2.015048373],
    [0.995, 16, 2.920781622],
  ];
  for (const [p, df, q] of table) assertAlmostEquals(studentTQuantile(p, df), q, 1e-8);
  assertAlmostEquals(studentTQuantile(0.975, 100000), 1.959980, 1e-5, "close to the normal");
  assertAlmostEquals(studentTQuantile(0.025, 4), -2.776445105, 1e-8);
  assertAlmostEquals(studentTCdf(-2, 1), 0.5 - Math.atan(2) / Math.PI, 1e-14);
  assertAlmostEquals(studentTCdf(1, 2), 0.5 + 0.5 / Math.sqrt(3), 1e-14);
  assertEquals(studentTCdf(0, 7), 0.5);
  assertThrows(() => studentTCdf(1, 2.5), /degrees of freedom 2.5/);
  assertThrows(() => studentTQuantile(1, 3), /probability 1/);
});

Deno.test("meanInterval() gives mean ± t·sd/√n, or the one value as itself", () => {
  const m = meanInterval([1, 2, 3]);
  assertEquals([m.n, m.mean, m.min, m.max, m.kind], [3, 2, 1, 3, "t"]);
  assertAlmostEquals(m.high - m.mean, 4.302652730 / Math.sqrt(3), 1e-8);
  assertAlmostEquals(m.mean - m.low, 4.302652730 / Math.sqrt(3), 1e-8);
  assertEquals(meanInterval([0.4]), {
    n: 1,
    mean: 0.4,
    low: 0.4,
    high: 0.4,
    min: 0.4,
    max: 0.4,
    kind: "single",
  });
  assertThrows(() => meanInterval([]), /at least one value/);
});

Deno.test("trendVerdict() words the verdict for what was measured, with slope, CI and df", () => {
  const up = olsFit([1, 2, 3, 4], [1, 2.1, 2.9, 4.2]);
  assertMatch(trendVerdict(up, { subject: "L0" }), /^L0 grows with size: slope 1\.04, 95% CI \[/);
  const down = olsFit([1, 2, 3, 4], [4, 2.9, 2.1, 1]);
  assertMatch(trendVerdict(down, { subject: "L0" }), /^L0 falls with size: slope -0\.98/);
  const flat = olsFit([1, 2, 3, 4], [2, 2.2, 1.8, 2.05]);
  assertMatch(
    trendVerdict(flat, { subject: "L0", detail: "6 sizes" }),
    /^no detectable trend in L0 with size: slope -0\.025, 95% CI \[-0\.\d+, 0\.\d+\], df 2; 6 sizes$/,
  );
  assertMatch(
    trendVerdict(olsFit([1, 2], [1, 2]), { subject: "L0" }),
    /^inconclusive for L0: slope 1, no interval with 2 points \(df 0\)$/,
  );
});

/** Simulated SAEs at the study's shape: log10 L0 = a + slope·log10 size + size effect + noise. */
function simulate(
  rng: Rng,
  slope: number,
  replicates: number,
  noise: { perSae: number; perSize: number },
): SaeScalingInput[] {
  return SIZES.flatMap((size) => {
    const shared = noise.perSize * rng.normal();
    return Array.from({ length: replicates }, (_, r) => ({
      name: r === 0 ? `f${size}` : `f${size}-independent-r${r}`,
      size,
      init: "independent",
      replicate: r,
      seed: r,
      architecture: "relu",
      heldoutTokens: 2_000_000,
      l0: 10 ** (1.3 + slope * Math.log10(size) + shared + noise.perSae * rng.normal()),
      fve: 0.8,
      deadFraction: 0,
      alive: size,
      deadOrUltraLow: 0,
    }));
  });
}

Deno.test("the scaling L0 interval covers the true slope in ≥ 90% of 240 simulated studies", () => {
  // 6 sizes × 1, 2 or 3 replicates, slopes −0.2..0.2, Gaussian noise per SAE and per size.
  const rng = new Rng(2024);
  let covered = 0, total = 0;
  for (let i = 0; i < 240; i++) {
    const slope = -0.2 + 0.4 * (i % 5) / 4;
    const saes = simulate(rng, slope, 1 + (i % 3), { perSae: 0.06, perSize: 0.03 });
    const fit = analyseScaling(saes, { ultraLow: 1e-6 }).fits.find((f) => f.statistic === "l0")!;
    assertEquals(fit.fit.df, 4, "one point per size: df = sizes − 2");
    if (fit.fit.ciLow <= slope && slope <= fit.fit.ciHigh) covered++;
    total++;
  }
  const rate = covered / total;
  console.log(`coverage of the 95% slope interval: ${covered}/${total} = ${rate.toFixed(3)}`);
  assert(rate >= 0.9, `coverage ${rate} is below 0.9`);
  assert(rate <= 0.99, `coverage ${rate} is so high the interval is wasted`);
});

Deno.test("pooling replicates as independent points undercovers when sizes share a deviation", () => {
  // Why the scaling stage fits per-size means: 3 replicates that share their size's deviation
  // are not 3 independent points.
  const rng = new Rng(7);
  let covered = 0;
  const runs = 200;
  for (let i = 0; i < runs; i++) {
    const saes = simulate(rng, 0, 3, { perSae: 0.01, perSize: 0.05 });
    const pooled = olsFit(saes.map((s) => Math.log10(s.size)), saes.map((s) => Math.log10(s.l0)));
    if (pooled.ciLow <= 0 && 0 <= pooled.ciHigh) covered++;
  }
  console.log(`coverage of pooled points: ${covered}/${runs}`);
  assert(covered / runs < 0.85, `pooled coverage ${covered / runs} should fall well short of 0.95`);
});
