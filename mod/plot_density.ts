/**
 * The seed paper's density charts as Vega-Lite specs rendered to SVG (see mod/plot_render.ts):
 * superimposed normalised density histograms of every SAE size with the "dead / ultra-low" bar on
 * the left, one histogram per size, the log histogram of density > 0, and the scaling of the alive
 * fraction with SAE size beside its power-law fit. Every density chart prints the resolution of
 * the token count (1 / tokens) in its subtitle.
 *
 * @module
 */
import type * as vl from "vega-lite";
import { type DensityHistogram, log10Histogram, resolutionNote } from "./density.ts";
import { agreesWithPaper, powerLawAt, type PowerLawFit } from "./fit.ts";
import { type Chart, renderChart, SIZE_COLORS } from "./plot_render.ts";

export interface SizedHistogram {
  size: number;
  hist: DensityHistogram;
}

export interface ScalingPoint {
  size: number;
  aliveFraction: number;
  alive: number;
  /** Mean number of features active per token (L0); with it, the chart adds L0 / size and L0. */
  l0?: number;
}

const X_DENSITY_TITLE = "feature density (fraction of tokens, log scale)";
const Y_FRACTION_TITLE = "fraction of features";

/** Superimposed normalised density histograms, one colour per SAE size. */
export async function densityOverlayChart(
  hists: SizedHistogram[],
  opts: { title?: string } = {},
): Promise<Chart> {
  if (hists.length === 0) throw new Error("Density overlay needs at least one histogram");
  const first = hists[0].hist;
  for (const { size, hist } of hists) {
    if (hist.edges.join() !== first.edges.join()) {
      throw new Error(
        `Histogram of size ${size} has edges ${hist.edges[0]}..${hist.edges.at(-1)} (` +
          `${hist.counts.length} bins), not those of size ${hists[0].size}: ` +
          `superimposed histograms must share their bins`,
      );
    }
    if (hist.ultraLowThreshold !== first.ultraLowThreshold) {
      throw new Error(
        `Histogram of size ${size} has ultra-low threshold ${hist.ultraLowThreshold}, ` +
          `not ${first.ultraLowThreshold} as size ${hists[0].size}`,
      );
    }
  }
  const sizes = hists.map((h) => sizeLabel(h.size));
  if (new Set(sizes).size !== sizes.length) {
    throw new Error(`Density overlay got a size twice: ${sizes.join(", ")}`);
  }
  const color = {
    field: "SAE size",
    type: "nominal",
    scale: { domain: sizes, range: sizes.map((_, i) => SIZE_COLORS[i % SIZE_COLORS.length]) },
    legend: hists.length > 1 ? { title: "SAE size" } : null,
  } as const;
  const threshold = first.ultraLowThreshold;
  const deadLabel = threshold > 0 ? `dead / < ${threshold.toExponential(0)}` : "dead";
  const deadRows = hists.map(({ size, hist }) => ({
    "SAE size": sizeLabel(size),
    fraction: hist.deadOrUltraLowFraction,
    dead: hist.dead,
    ultraLow: hist.ultraLow,
  }));
  const binRows = hists.flatMap(({ size, hist }) =>
    hist.counts.map((count, i) => ({
      "SAE size": sizeLabel(size),
      lo: hist.edges[i],
      hi: hist.edges[i + 1],
      count,
      fraction: hist.fractions[i],
    }))
  );
  const notes = [...new Set(hists.map(({ hist }) => resolutionNote(hist.nTokens, threshold)))];
  const lo = first.edges[0], hi = first.edges[first.edges.length - 1];
  const spec = {
    title: {
      text: opts.title ?? "Superimposed normalised histograms of feature density",
      subtitle: notes,
    },
    hconcat: [
      {
        name: "dead",
        width: Math.max(24, 14 * hists.length),
        height: 260,
        data: { values: deadRows },
        mark: { type: "bar" },
        encoding: {
          x: {
            field: "SAE size",
            type: "nominal",
            sort: sizes,
            title: deadLabel,
            axis: { labels: false, ticks: false, titleFontWeight: "bold" },
          },
          y: { field: "fraction", type: "quantitative", title: Y_FRACTION_TITLE },
          color,
        },
      },
      {
        name: "bins",
        width: 420,
        height: 260,
        data: { values: binRows },
        mark: { type: "bar", opacity: hists.length > 1 ? 0.5 : 0.9, binSpacing: 0 },
        encoding: {
          x: densityX(lo, hi),
          x2: { field: "hi" },
          y: { field: "fraction", type: "quantitative", title: null, axis: { labels: false } },
          y2: { datum: 0 },
          color,
        },
      },
    ],
    resolve: { scale: { y: "shared", color: "shared" } },
    spacing: 4,
  } as vl.TopLevelSpec;
  return await renderChart(spec);
}

/** One SAE size's density histogram (the paper's appendix plots). */
export async function densityChart(size: number, hist: DensityHistogram): Promise<Chart> {
  return await densityOverlayChart([{ size, hist }], {
    title: `${sizeLabel(size)}-feature SAE: feature density histogram`,
  });
}

/** Histogram of log10 density over the features with density > 0 (the paper's log histogram). */
export async function logDensityChart(
  size: number,
  densities: ArrayLike<number>,
  opts: { nTokens?: number; binsPerDecade?: number } = {},
): Promise<Chart> {
  const h = log10Histogram(densities, { binsPerDecade: opts.binsPerDecade ?? 4 });
  const lo = h.edges[0], hi = h.edges[h.edges.length - 1];
  const rows = h.counts.map((count, i) => ({ lo: h.edges[i], hi: h.edges[i + 1], count }));
  const alive = h.counts.reduce((a, b) => a + b, 0);
  const subtitle = [`${alive} features with density > 0; ${h.zeros} with density 0 left out`];
  if (opts.nTokens) subtitle.push(resolutionNote(opts.nTokens, 1e-6));
  const spec = {
    title: {
      text: `Log histogram of feature density > 0: ${sizeLabel(size)}-feature SAE`,
      subtitle,
    },
    width: 420,
    height: 260,
    data: { values: rows },
    mark: { type: "bar", binSpacing: 0, color: SIZE_COLORS[0] },
    encoding: {
      x: densityX(lo, hi),
      x2: { field: "hi" },
      y: { field: "count", type: "quantitative", title: "features" },
      y2: { datum: 0 },
    },
  } as vl.TopLevelSpec;
  return await renderChart(spec);
}

/** One log-log panel: points of `field` against size, and the fitted power law when given. */
function powerLawPanel(
  name: string,
  points: Record<string, number>[],
  field: string,
  title: string,
  xAxis: unknown,
  fit?: PowerLawFit,
) {
  const sizes = points.map((p) => p.size).sort((a, b) => a - b);
  const minS = sizes[0], maxS = sizes[sizes.length - 1];
  const layers: unknown[] = [{
    data: { values: points },
    mark: { type: "point", filled: true, size: 70, color: SIZE_COLORS[0] },
    encoding: {
      x: xAxis,
      y: { field, type: "quantitative", title, scale: { type: "log", nice: false } },
    },
  }];
  if (fit) {
    const rows = Array.from({ length: 21 }, (_, i) => {
      const size = minS * (maxS / minS) ** (i / 20);
      return { size, [field]: powerLawAt(fit, size) };
    });
    layers.push({
      data: { values: rows },
      mark: { type: "line", color: SIZE_COLORS[1], strokeDash: [6, 3] },
      encoding: { x: xAxis, y: { field, type: "quantitative" } },
    });
  }
  return { name, width: 300, height: 220, layer: layers };
}

function slopeText(label: string, fit?: PowerLawFit): string {
  if (!fit) return `${label}: no fit`;
  return `${label}: slope ${fit.slope.toFixed(3)} (${Math.round(fit.ci.level * 100)}% CI ` +
    `${fit.ci.low.toFixed(3)} to ${fit.ci.high.toFixed(3)}), R² ${fit.r2.toFixed(3)}`;
}

/**
 * How density scales with SAE size: the fraction of features alive (log-log, with its fit) and
 * the alive count; with L0 given, also the fraction of features active per token (L0 / size,
 * log-log, with `activeFit`) and L0 itself, the paper's "number of active features".
 */
export async function scalingChart(
  points: ScalingPoint[],
  fit?: PowerLawFit,
  activeFit?: PowerLawFit,
): Promise<Chart> {
  if (points.length === 0) throw new Error("Scaling chart needs at least one SAE size");
  const sizes = points.map((p) => p.size).sort((a, b) => a - b);
  const minS = sizes[0], maxS = sizes[sizes.length - 1];
  const xAxis = {
    field: "size",
    type: "quantitative",
    title: "SAE size (features, log scale)",
    scale: { type: "log", base: 2, domain: [minS / 1.3, maxS * 1.3], nice: false },
    axis: { values: sizes, format: "d" },
  } as const;
  const withL0 = points.every((p) => p.l0 !== undefined);
  const rows = points.map((p) => ({
    size: p.size,
    aliveFraction: p.aliveFraction,
    alive: p.alive,
    ...(withL0 ? { l0: p.l0!, activeFraction: p.l0! / p.size } : {}),
  }));
  const linePanel = (name: string, field: string, title: string, color: string) => ({
    name,
    width: 300,
    height: 220,
    data: { values: rows },
    mark: { type: "line", point: { filled: true, size: 70 }, color },
    encoding: {
      x: xAxis,
      y: { field, type: "quantitative", title, scale: { zero: true } },
    },
  });
  const top = [
    powerLawPanel("fraction", rows, "aliveFraction", "fraction alive (log scale)", xAxis, fit),
    linePanel("alive", "alive", "alive features (count)", SIZE_COLORS[2]),
  ];
  const subtitle = [slopeText("alive fraction", fit) + (fit ? `: ${agreesWithPaper(fit)}` : "")];
  let body: unknown = { hconcat: top };
  if (withL0) {
    subtitle.push(
      slopeText("active per token (L0 / size)", activeFit) +
        (activeFit ? `: ${agreesWithPaper(activeFit)}` : ""),
    );
    body = {
      vconcat: [
        { hconcat: top },
        {
          hconcat: [
            powerLawPanel(
              "active",
              rows,
              "activeFraction",
              "fraction active per token, L0 / size (log)",
              xAxis,
              activeFit,
            ),
            linePanel("l0", "l0", "active features per token (L0)", SIZE_COLORS[3]),
          ],
        },
      ],
    };
  }
  const spec = {
    title: { text: "Scaling of feature density with SAE size", subtitle },
    ...(body as Record<string, unknown>),
  } as vl.TopLevelSpec;
  return await renderChart(spec);
}

function sizeLabel(size: number): string {
  return String(size);
}

/** Ticks at whole decades, labelled 1e-k. */
/** The x encoding of a density histogram: bins' lower edges on the log10-density axis. */
function densityX(lo: number, hi: number) {
  return {
    field: "lo",
    type: "quantitative",
    title: X_DENSITY_TITLE,
    scale: { domain: [lo, hi], nice: false, zero: false },
    axis: log10Axis(lo, hi),
  };
}

function log10Axis(lo: number, hi: number) {
  const values: number[] = [];
  for (let v = Math.ceil(lo); v <= Math.floor(hi); v++) values.push(v);
  return { values, labelExpr: "datum.value === 0 ? '1' : '1e' + datum.value" };
}
