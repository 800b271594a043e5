import * as arrow from "apache-arrow";
import { assert, assertAlmostEquals, assertEquals, assertMatch, assertThrows } from "./assert.ts";
import {
  analyseScaling,
  deadOrUltraLowLabel,
  readSaeSummary,
  type SaeScalingInput,
} from "../mod/scaling/mod.ts";
import { Rng } from "../mod/run/mod.ts";

const SIZES = [512, 1024, 2048, 4096, 8192, 16384];

/** A sweep as the sae stage's summary describes it: every init × replicate × size. */
function sweep(
  opts: {
    inits?: string[];
    replicates?: number;
    l0: (size: number, init: string, r: number) => number;
    deadOrUltraLow: (size: number, init: string, r: number) => number;
    heldoutTokens?: number;
  },
): SaeScalingInput[] {
  const inits = opts.inits ?? ["independent", "parallel"];
  return inits.flatMap((init, i) =>
    Array.from({ length: opts.replicates ?? 3 }, (_, r) =>
      SIZES.map((size) => {
        const dead = Math.round(opts.deadOrUltraLow(size, init, r) * size);
        return {
          name: i === 0 && r === 0 ? `f${size}` : `f${size}-${init}-r${r}`,
          size,
          init,
          replicate: r,
          seed: 100 * i + r,
          architecture: "relu",
          heldoutTokens: opts.heldoutTokens ?? 4_000_000,
          l0: opts.l0(size, init, r),
          fve: 0.7 + 0.01 * r,
          deadFraction: dead / size,
          alive: size - dead,
          deadOrUltraLow: dead,
          lossRecovered: i === 0 && r === 0 ? 0.9 : null,
        };
      })).flat()
  );
}

Deno.test("analyseScaling() finds no trend in a flat L0 and a growing dead / ultra-low share", () => {
  const rng = new Rng(11);
  const saes = sweep({
    l0: () => 20 * 10 ** (0.02 * rng.normal()),
    deadOrUltraLow: (size, init) =>
      init === "parallel" ? 0 : 0.05 + 0.1 * Math.log2(size / 512) + 0.01 * rng.normal(),
  });
  const { sizes, fits } = analyseScaling(saes, { ultraLow: 1e-6 });
  assertEquals(sizes.length, 12, "one row per (init, size)");
  assertEquals(fits.map((f) => `${f.init}/${f.statistic}`), [
    "independent/l0",
    "independent/dead_or_ultra_low_fraction",
    "independent/alive_fraction",
    "independent/fve",
    "parallel/l0",
    "parallel/dead_or_ultra_low_fraction",
    "parallel/alive_fraction",
    "parallel/fve",
  ]);
  const get = (init: string, stat: string) =>
    fits.find((f) => f.init === init && f.statistic === stat)!;
  for (const init of ["independent", "parallel"]) {
    const l0 = get(init, "l0");
    assertEquals(l0.trend, "no detectable trend");
    assertEquals([l0.fit.n, l0.fit.df, l0.saes, l0.replicatesMin, l0.replicatesMax], [
      6,
      4,
      18,
      3,
      3,
    ]);
    assertMatch(
      l0.verdict,
      /^no detectable trend in L0 with size: slope -?0\.\d+ \(log10 L0 per log10 size\), 95% CI \[-0\.\d+, 0\.\d+\], df 4; 6 sizes × 3 replicate\(s\), 18 SAEs$/,
    );
  }
  const grows = get("independent", "dead_or_ultra_low_fraction");
  assertEquals(grows.trend, "grows");
  // 0.1 per doubling is 0.1 / log10(2) ≈ 0.33 per tenfold size.
  assertAlmostEquals(grows.fit.slope, 0.1 / Math.log10(2), 0.03);
  assertMatch(
    grows.verdict,
    /^the dead or ultra-low fraction grows with size: slope 0\.3\d+ per tenfold size, 95% CI \[0\.\d+, 0\.\d+\], df 4; .*ultra-low = density < 1e-6, resolution 1\/N = 2\.5e-7$/,
  );
  const none = get("parallel", "dead_or_ultra_low_fraction");
  assertEquals([none.trend, none.fit.slope, none.fit.se], ["no detectable trend", 0, 0]);
  assertMatch(
    get("independent", "alive_fraction").verdict,
    /^descriptive, the alive fraction falls/,
  );
  assertEquals(get("independent", "alive_fraction").role, "descriptive");
});

Deno.test("analyseScaling() detects L0 that grows with size", () => {
  const rng = new Rng(3);
  const saes = sweep({
    inits: ["independent"],
    replicates: 2,
    l0: (size) => 2 * size ** 0.3 * 10 ** (0.02 * rng.normal()),
    deadOrUltraLow: () => 0,
  });
  const l0 = analyseScaling(saes, { ultraLow: 1e-6 }).fits[0];
  assertEquals(l0.statistic, "l0");
  assertEquals(l0.trend, "grows");
  assertAlmostEquals(l0.fit.slope, 0.3, 0.05);
  assert(l0.fit.ciLow > 0.2 && l0.fit.ciHigh < 0.4, `[${l0.fit.ciLow}, ${l0.fit.ciHigh}]`);
  assertMatch(
    l0.verdict,
    /^L0 grows with size: slope 0\.\d+ .*6 sizes × 2 replicate\(s\), 12 SAEs$/,
  );
});

Deno.test("analyseScaling() gives per-size means with t intervals over replicates", () => {
  const saes = sweep({
    inits: ["independent"],
    l0: (_, __, r) => [10, 12, 14][r],
    deadOrUltraLow: (_, __, r) => [0, 0.25, 0.5][r],
  });
  const { sizes } = analyseScaling(saes, { ultraLow: 1e-6 });
  const f512 = sizes[0];
  assertEquals([f512.init, f512.size, f512.replicates, f512.seeds], [
    "independent",
    512,
    3,
    "0,1,2",
  ]);
  assertEquals(f512.names, "f512,f512-independent-r1,f512-independent-r2");
  assertEquals([f512.primary, f512.lossRecovered], ["f512", 0.9]);
  const l0 = f512.stats.l0;
  assertEquals([l0.mean, l0.min, l0.max, l0.kind], [12, 10, 14, "t"]);
  assertAlmostEquals(l0.high - l0.mean, 4.302652730 * 2 / Math.sqrt(3), 1e-8);
  assertAlmostEquals(f512.stats.dead_or_ultra_low_fraction.mean, 0.25, 1e-12);
  assertAlmostEquals(f512.stats.alive_fraction.mean, 0.75, 1e-12);
  const single = analyseScaling(
    sweep({ inits: ["parallel"], replicates: 1, l0: () => 7, deadOrUltraLow: () => 0 }),
    { ultraLow: 1e-6 },
  ).sizes[0];
  assertEquals([single.stats.l0.kind, single.stats.l0.low, single.stats.l0.high], ["single", 7, 7]);
});

Deno.test("the dead class says 'below the resolution' when ultra-low cannot be resolved", () => {
  assertEquals(
    deadOrUltraLowLabel(10_000_000, 1e-6),
    "dead or ultra-low (density < 1e-6; resolution 1/N = 1.0e-7)",
  );
  assertEquals(
    deadOrUltraLowLabel(40_000, 1e-6),
    "dead or below the resolution 1/N = 2.5e-5 (ultra-low < 1e-6 not resolvable in 40,000 tokens)",
  );
  const saes = sweep({
    inits: ["independent"],
    replicates: 1,
    heldoutTokens: 40_000,
    l0: () => 20,
    deadOrUltraLow: () => 0.1,
  });
  const { sizes, fits } = analyseScaling(saes, { ultraLow: 1e-6 });
  assertEquals(sizes[0].ultraLowResolved, false);
  const dead = fits.find((f) => f.statistic === "dead_or_ultra_low_fraction")!;
  assertMatch(
    dead.verdict,
    /^no detectable trend in the dead or below-resolution fraction with size: .*resolution 1\/N = 2\.5e-5 ≥ 1e-6, so ultra-low is not resolvable$/,
  );
  assertEquals(dead.resolution, 1 / 40_000);
});

Deno.test("analyseScaling() with two sizes fits but calls the verdict inconclusive", () => {
  const saes = sweep({
    inits: ["independent"],
    replicates: 1,
    l0: (s) => s / 20,
    deadOrUltraLow: () => 0,
  })
    .filter((s) => s.size <= 1024);
  const { fits, notes } = analyseScaling(saes, { ultraLow: 1e-6 });
  assertEquals(fits[0].fit.df, 0);
  assertEquals(fits[0].trend, "inconclusive");
  assertMatch(fits[0].verdict, /^inconclusive for L0: slope 1 .*no interval with 2 points/);
  assertEquals(notes, []);
  const dead = analyseScaling(saes.map((s) => ({ ...s, alive: 0, l0: 0 })), { ultraLow: 1e-6 });
  assertEquals(dead.fits.map((f) => f.statistic), ["dead_or_ultra_low_fraction", "fve"]);
  assertMatch(dead.notes.join("\n"), /independent: l0: 2 SAE\(s\) left out/);
});

Deno.test("readSaeSummary() reads the per-SAE contract and defaults what an old summary lacks", () => {
  const base = {
    size: [512, 512, 1024],
    architecture: ["relu", "relu", "relu"],
    heldout_tokens: [1000, 1000, 1000],
    fve: [0.8, 0.81, 0.7],
    l0: [10, 11, 12],
    dead_fraction: [0, 0.1, 0.2],
    alive: [512, 460, 819],
  };
  const full = arrow.tableFromJSON(base.size.map((_, i) => ({
    name: ["f512", "f512-parallel-r0", "f1024"][i],
    init: ["independent", "parallel", "independent"][i],
    replicate: 0,
    seed: [1, 2, 3][i],
    ...Object.fromEntries(Object.entries(base).map(([k, v]) => [k, v[i]])),
  })));
  const rows = readSaeSummary(full, { init: "parallel", seed: 9 });
  assertEquals(rows.map((r) => [r.name, r.init, r.replicate, r.seed]), [
    ["f512", "independent", 0, 1],
    ["f512-parallel-r0", "parallel", 0, 2],
    ["f1024", "independent", 0, 3],
  ]);
  assertEquals(rows[1].alive, 460);
  const old = arrow.tableFromJSON(
    [0, 2].map((i) => Object.fromEntries(Object.entries(base).map(([k, v]) => [k, v[i]]))),
  );
  assertEquals(
    readSaeSummary(old, { init: "parallel", seed: 9 }).map((r) => [r.name, r.init, r.seed]),
    [["f512", "parallel", 9], ["f1024", "parallel", 9]],
  );
  assertEquals(readSaeSummary(old)[0].init, "independent");
  const twice = arrow.tableFromJSON(
    [0, 1].map((i) => Object.fromEntries(Object.entries(base).map(([k, v]) => [k, v[i]]))),
  );
  assertThrows(() => readSaeSummary(twice, {}, "S"), /S names SAE "f512" twice/);
  const noL0 = arrow.tableFromJSON([{ size: 1, heldout_tokens: 1 }]);
  assertThrows(() => readSaeSummary(noL0, {}, "S"), /S has no column "l0"/);
});

Deno.test("analyseScaling() fits each architecture apart, on hand-made summary rows", () => {
  const relu = sweep({
    inits: ["independent"],
    l0: () => 20,
    deadOrUltraLow: (size) => 0.05 * Math.log2(size / 256),
  });
  // TopK: L0 pinned at k, nothing dead, fve rising with size.
  const topk = sweep({ inits: ["independent"], l0: () => 32, deadOrUltraLow: () => 0 }).map((
    s,
  ) => ({
    ...s,
    name: `f${s.size}-topk-independent-r${s.replicate}`,
    architecture: "topk",
    fve: 0.6 + 0.05 * Math.log2(s.size / 512) + 0.001 * s.replicate,
    lossRecovered: s.replicate === 0 ? 0.95 : null,
    browsed: s.replicate === 0,
  }));
  const a = analyseScaling([...relu, ...topk], { ultraLow: 1e-6 });
  assertEquals([...new Set(a.sizes.map((r) => `${r.architecture}/${r.init}`))], [
    "relu/independent",
    "topk/independent",
  ]);
  assertEquals(a.sizes.length, 2 * SIZES.length);
  const fit = (arch: string, stat: string) =>
    a.fits.find((f) => f.architecture === arch && f.statistic === stat)!;
  for (const arch of ["relu", "topk"]) {
    for (const stat of ["l0", "dead_or_ultra_low_fraction", "alive_fraction", "fve"]) {
      assert(fit(arch, stat), `${arch} ${stat}`);
      assertEquals(fit(arch, stat).saes, 3 * SIZES.length, `${arch} ${stat}: its own SAEs only`);
    }
  }
  // relu's dead share grows 0.05 per doubling = 0.166 per tenfold; topk's stays 0.
  assertAlmostEquals(
    fit("relu", "dead_or_ultra_low_fraction").fit.slope,
    0.05 / Math.log10(2),
    0.01,
  );
  assertAlmostEquals(fit("topk", "dead_or_ultra_low_fraction").fit.slope, 0, 1e-9);
  assertAlmostEquals(fit("topk", "fve").fit.slope, 0.05 / Math.log10(2), 1e-6);
  assertEquals(fit("topk", "fve").role, "descriptive");
  assertMatch(fit("topk", "l0").verdict, /topk sets L0 by k, so this is no test of the paper/);
  assert(!/no test/.test(fit("relu", "l0").verdict));
  // The browsed SAE of each (architecture, size) carries its loss recovered.
  const row = a.sizes.find((r) => r.architecture === "topk" && r.size === 1024)!;
  assertEquals([row.primary, row.lossRecovered], ["f1024-topk-independent-r0", 0.95]);
  assertEquals(a.sizes.find((r) => r.architecture === "relu" && r.size === 1024)!.primary, "f1024");
});

Deno.test("readSaeSummary() reads 'standard' as relu and defaults a missing architecture", () => {
  const t = arrow.tableFromArrays({
    name: ["f64", "f64-topk-independent-r0"],
    size: Int32Array.from([64, 64]),
    architecture: ["standard", "topk"],
    heldout_tokens: [100, 100],
    l0: [3, 4],
    fve: [0.5, 0.6],
    dead_fraction: [0, 0],
    alive: [64, 64],
  });
  assertEquals(readSaeSummary(t).map((r) => r.architecture), ["relu", "topk"]);
  const old = arrow.tableFromArrays({
    size: Int32Array.from([64]),
    heldout_tokens: [100],
    l0: [3],
    fve: [0.5],
    dead_fraction: [0],
    alive: [64],
  });
  assertEquals(readSaeSummary(old, { architecture: "gated" })[0].architecture, "gated");
  assertEquals(readSaeSummary(old)[0].architecture, "relu");
});
