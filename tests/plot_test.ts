import { assert, assertEquals, assertGreater, assertMatch, assertRejects } from "./assert.ts";
import { densityHistogram, featureDensities } from "../mod/features/mod.ts";
import { olsFit } from "../mod/scaling/mod.ts";
import {
  densityChart,
  densityOverlayChart,
  logDensityChart,
  lossCurveChart,
  renderChart,
  saeMetricsChart,
  scalingChart,
  writeChart,
  writeCharts,
} from "../mod/plot/mod.ts";
import { DEFAULT_CHROMIUM } from "../mod/plot/mod.ts";
import { SIZE_COLORS, svgSize } from "../mod/plot/mod.ts";

const N_TOKENS = 1_000_000;
const SIZES = [512, 1024, 2048];

/** Synthetic firing counts: `alive` features spread over densities 1e-5..1e-1, the rest dead. */
function counts(size: number, alive: number): Float64Array {
  const out = new Float64Array(size);
  for (let i = 0; i < alive; i++) out[i] = Math.round(N_TOKENS * 10 ** (-1 - (4 * i) / alive));
  return out;
}

/** The marks inside each `<g class="mark-... role-mark <name>">` (they are flat paths). */
function markGroups(svg: string, name: string): string[] {
  const re = new RegExp(`<g class="mark-\\w+ role-mark ${name}"[^>]*>(.*?)</g>`, "gs");
  return [...svg.matchAll(re)].map((m) => m[1]);
}

function fills(markup: string): string[] {
  return [...markup.matchAll(/fill="(#[0-9a-f]{6})"/g)].map((m) => m[1]);
}

function strokes(markup: string): string[] {
  return [...markup.matchAll(/stroke="(#[0-9a-f]{6})"/g)].map((m) => m[1]);
}

function assertOffline(svg: string) {
  const urls = [...svg.matchAll(/https?:\/\/[^"' )]+/g)].map((m) => m[0]);
  assert(urls.every((u) => u.startsWith("http://www.w3.org/")), `SVG links out: ${urls}`);
  assert(!svg.includes("href"), "SVG references no external resource");
}

Deno.test("densityOverlayChart() draws one colour per SAE size, in bins and in the dead bar", async () => {
  const hists = SIZES.map((size, i) => ({
    size,
    hist: densityHistogram(counts(size, 400 - 50 * i), N_TOKENS),
  }));
  const { spec, svg } = await densityOverlayChart(hists);
  assert(svg.startsWith("<svg"), "an SVG document");
  for (
    const text of [
      "Superimposed normalised histograms of feature density",
      "feature density (fraction of tokens, log scale)",
      "fraction of features",
      "dead / &lt; 1e-6",
      "resolution 1/N = 1.0e-6",
      "SAE size",
    ]
  ) assert(svg.includes(text), `SVG shows "${text}"`);
  const dead = markGroups(svg, "dead_marks");
  assertEquals(dead.length, 1);
  assertEquals(fills(dead[0]), SIZE_COLORS.slice(0, 3), "one dead bar per size, each its colour");
  const bins = markGroups(svg, "bins_marks");
  assertEquals(new Set(fills(bins[0])), new Set(SIZE_COLORS.slice(0, 3)));
  assertEquals(fills(bins[0]).length, 3 * hists[0].hist.counts.length, "a bar per bin per size");
  for (const size of SIZES) assertMatch(svg, new RegExp(`role-legend-label.*>${size}<`, "s"));
  assert(JSON.stringify(spec).includes('"values"'), "data travels inline");
  assertOffline(svg);
});

Deno.test("densityOverlayChart() refuses histograms with different bins or a size twice", async () => {
  const a = densityHistogram(counts(512, 100), N_TOKENS);
  const b = densityHistogram(counts(1024, 100).map((c) => Math.min(c, 1000)), 1000);
  await assertRejects(
    () => densityOverlayChart([{ size: 512, hist: a }, { size: 1024, hist: b }]),
    /Histogram of size 1024 has edges -3\.\.0 \(12 bins\), not those of size 512/,
  );
  await assertRejects(
    () => densityOverlayChart([{ size: 5, hist: a }, { size: 5, hist: a }]),
    /got a size twice: 5, 5/,
  );
  await assertRejects(() => densityOverlayChart([]), /at least one histogram/);
});

Deno.test("densityChart() draws one size in one colour with its title and resolution", async () => {
  const hist = densityHistogram(counts(512, 300), 100_000);
  const { svg } = await densityChart(512, hist);
  assert(svg.includes("512-feature SAE: feature density histogram"));
  assert(svg.includes("cannot be measured"), "1e5 tokens cannot see 1e-6, and the chart says so");
  assertEquals(new Set(fills(markGroups(svg, "bins_marks")[0])), new Set([SIZE_COLORS[0]]));
  assert(!svg.includes("role-legend"), "no legend for a single size");
});

Deno.test("logDensityChart() bins density > 0 and says how many zeros it left out", async () => {
  const c = counts(16384, 1000);
  const { svg } = await logDensityChart(16384, featureDensities(c, N_TOKENS), {
    nTokens: N_TOKENS,
  });
  assert(svg.includes("Log histogram of feature density &gt; 0: 16384-feature SAE"));
  assert(svg.includes("1000 features with density &gt; 0; 15384 with density 0 left out"));
  assert(svg.includes("features") && svg.includes("feature density (fraction of tokens"));
  assertEquals(fills(markGroups(svg, "marks")[0]).length, 16, "1e-5..1e-1 in quarter decades");
});

Deno.test("scalingChart() draws dead / ultra-low and L0 per init with replicate points, fits and bands", async () => {
  const points = ["independent", "parallel"].flatMap((init, i) =>
    [512, 1024, 2048, 4096].flatMap((size) =>
      [0, 1, 2].map((r) => ({
        name: `f${size}-${init}-r${r}`,
        init,
        size,
        l0: 20 + r,
        deadOrUltraLowFraction: i === 0 ? 0.1 * Math.log2(size / 512) + 0.01 * r : 0,
      }))
    )
  );
  const means = (init: string, f: (p: typeof points[0]) => number) => {
    const xs = [512, 1024, 2048, 4096];
    return olsFit(
      xs.map(Math.log10),
      xs.map((s) => {
        const g = points.filter((p) => p.init === init && p.size === s);
        return g.reduce((a, p) => a + f(p), 0) / g.length;
      }),
    );
  };
  const fits = ["independent", "parallel"].flatMap((init) => [
    {
      init,
      statistic: "l0" as const,
      fit: means(init, (p) => Math.log10(p.l0)),
      verdict: `no detectable trend in L0 (${init})`,
    },
    {
      init,
      statistic: "dead_or_ultra_low_fraction" as const,
      fit: means(init, (p) => p.deadOrUltraLowFraction),
      verdict: `dead share grows (${init})`,
    },
  ]);
  const { svg } = await scalingChart(points, fits, {
    deadLabel: "dead or ultra-low (density < 1e-6; resolution 1/N = 1.0e-7)",
  });
  for (
    const t of [
      "Scaling with SAE size: dead / ultra-low features and L0",
      "independent: no detectable trend in L0 (independent)",
      "parallel: dead share grows (parallel)",
      "dead or ultra-low (density &lt; 1e-6; resolution 1/N = 1.0e-7)",
      "fraction dead or ultra-low",
      "L0, active features per token (log scale)",
      "SAE size (features, log scale)",
      "initialisation",
    ]
  ) {
    assert(svg.includes(t), `text "${t}"`);
  }
  for (const panel of ["dead", "l0"]) {
    // Layers: bands (one area per init), fit lines (one per init), replicate points (24).
    assertEquals(markGroups(svg, `${panel}_layer_0_marks`).length, 2, `${panel}: two bands`);
    assertEquals(markGroups(svg, `${panel}_layer_1_marks`).length, 2, `${panel}: two lines`);
    assertEquals(markGroups(svg, `${panel}_layer_2_marks`)[0].match(/<path/g)?.length, 24);
  }
  const bare = await scalingChart(points);
  assert(bare.svg.includes("no fit (fewer than two sizes)"));
  // Several architectures: the legend names what the colours are.
  const titled = await scalingChart(points, [], { groupTitle: "architecture / initialisation" });
  assert(titled.svg.includes("architecture / initialisation"));
  assert(!bare.svg.includes("architecture / initialisation"));
  assertEquals(markGroups(bare.svg, "dead_layer_0_marks")[0].match(/<path/g)?.length, 24);
});

Deno.test("lossCurveChart() draws train and validation, skipping missing validation rows", async () => {
  const rows = Array.from({ length: 5000 }, (_, step) => ({
    step,
    train_loss: 3 + 7 * Math.exp(-step / 800),
    val_loss: step % 500 === 0 ? 3.1 + 7 * Math.exp(-step / 800) : undefined,
  }));
  rows[10].train_loss = NaN;
  const { svg, spec } = await lossCurveChart(rows, "Transformer loss, demo");
  for (const t of ["Transformer loss, demo", "step", "cross-entropy loss", "train", "validation"]) {
    assert(svg.includes(t), `SVG shows "${t}"`);
  }
  assertEquals(markGroups(svg, "layer_1_layer_1_marks")[0].match(/<path/g)?.length, 10);
  const train = (spec as { layer: { data: { values: unknown[] } }[] }).layer[0].data.values;
  assert(train.length <= 1001, `5000 train rows thinned to ${train.length}`);
  await assertRejects(() => lossCurveChart([{ step: 0, train_loss: NaN }], "x"), /no finite loss/);
});

Deno.test("saeMetricsChart() draws MSE, L0 and dead fraction with one line per size", async () => {
  const series = SIZES.map((size) => ({
    size,
    rows: Array.from({ length: 50 }, (_, i) => ({
      step: i * 100,
      mse: 1 / (1 + i),
      l0: 40 + size / 100,
      dead_fraction: (i / 50) * (size / 2048),
    })),
  }));
  const { svg } = await saeMetricsChart(series);
  for (const t of ["MSE", "L0 (active features per token)", "dead fraction", "step"]) {
    assert(svg.includes(t), `SVG shows "${t}"`);
  }
  for (const panel of ["mse_marks", "l0_marks", "dead_fraction_marks"]) {
    const lines = markGroups(svg, panel);
    assertEquals(lines.length, 3, `${panel}: one line per size`);
    assertEquals(lines.flatMap(strokes), SIZE_COLORS.slice(0, 3));
  }
});

Deno.test("renderChart() refuses to load data from a URL: charts render offline", async () => {
  await assertRejects(
    () =>
      renderChart({
        data: { url: "https://example.com/data.json" },
        mark: "point",
        encoding: { x: { field: "a", type: "quantitative" } },
      }),
    /Chart tried to load "https:\/\/example.com\/data.json": charts render offline/,
  );
});

Deno.test("writeChart() writes the SVG and spec atomically and skips a PNG without Chromium", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rtd-plot-" });
  try {
    const chart = await densityChart(512, densityHistogram(counts(512, 100), N_TOKENS));
    const out = await writeChart(`${dir}/sub/density_f512`, chart, {
      spec: true,
      png: true,
      chromiumPath: `${dir}/no-such-chromium`,
    });
    assertEquals(out.svg, `${dir}/sub/density_f512.svg`);
    assertEquals(await Deno.readTextFile(out.svg), chart.svg);
    assertEquals(JSON.parse(await Deno.readTextFile(out.spec!)), chart.spec);
    assertEquals(out.png, undefined);
    assertMatch(out.pngSkipped!, /Chromium not found at ".*no-such-chromium"/);
    const names = [...Deno.readDirSync(`${dir}/sub`)].map((e) => e.name).sort();
    assertEquals(names, ["density_f512.svg", "density_f512.vl.json"], "no temp files left");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const hasChromium = await Deno.stat(DEFAULT_CHROMIUM).then(() => true, () => false);
if (!hasChromium) console.log(`PNG test skipped: no Chromium at ${DEFAULT_CHROMIUM}`);

Deno.test({
  name: "writeCharts() renders PNGs at twice the SVG size with one headless Chromium",
  ignore: !hasChromium,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "rtd-plot-" });
    try {
      const a = await densityChart(512, densityHistogram(counts(512, 100), N_TOKENS));
      const b = await lossCurveChart([{ step: 0, train_loss: 9 }, { step: 1, train_loss: 7 }], "L");
      const out = await writeCharts([{ path: `${dir}/a`, chart: a }, {
        path: `${dir}/b`,
        chart: b,
      }], {
        png: true,
      });
      for (const [i, chart] of [a, b].entries()) {
        const png = await Deno.readFile(out[i].png!);
        assertEquals([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], "PNG magic");
        const view = new DataView(png.buffer, png.byteOffset);
        const { width, height } = svgSize(chart.svg);
        assertEquals([view.getUint32(16), view.getUint32(20)], [2 * width, 2 * height]);
        assertGreater(png.length, 5000);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
