/**
 * The seed paper's density charts as Vega-Lite specs rendered to SVG (see mod/plot/render.ts):
 * superimposed normalised density histograms of every SAE size with the "dead / ultra-low" bar on
 * the left, one histogram per size, the log histogram of density > 0, and the scaling of the dead /
 * ultra-low fraction and of L0 with SAE size, per initialisation, with fitted lines and bands. Every density chart prints the resolution of
 * the token count (1 / tokens) in its subtitle.
 *
 * @module
 */
import type * as vl from "vega-lite";
import { type DensityHistogram, log10Histogram, resolutionNote } from "../features/mod.ts";
import { lineBand, type LineFit } from "../scaling/mod.ts";
import { type Chart, renderChart, SIZE_COLORS } from "./render.ts";

export interface SizedHistogram {
  size: number;
  hist: DensityHistogram;
}

/** One trained SAE on the scaling chart. */
export interface ScalingPoint {
  name: string;
  init: string;
  size: number;
  l0: number;
  /** Never fired, or density below the ultra-low threshold (see mod/scaling/scaling.ts). */
  deadOrUltraLowFraction: number;
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

/** One fit line of the scaling chart: `y = intercept + slope · log10(size)` (log10 L0 for L0). */
export interface ScalingFitLine {
  init: string;
  statistic: "l0" | "dead_or_ultra_low_fraction";
  fit: LineFit;
  verdict: string;
}

/** Draws `fit` over [minS, maxS] with its confidence band; `exp` maps the fitted value to y. */
function fitRows(
  fits: ScalingFitLine[],
  statistic: ScalingFitLine["statistic"],
  minS: number,
  maxS: number,
  exp: (v: number) => number,
) {
  return fits.filter((f) => f.statistic === statistic).flatMap((f) =>
    Array.from({ length: 25 }, (_, i) => {
      const size = minS * (maxS / minS) ** (i / 24);
      const b = lineBand(f.fit, Math.log10(size));
      const banded = Number.isFinite(b.low) && Number.isFinite(b.high);
      return {
        init: f.init,
        size,
        y: exp(b.y),
        ...(banded ? { low: exp(b.low), high: exp(b.high) } : {}),
      };
    })
  );
}

/**
 * How the paper's two scaling claims look in this run, per initialisation (colour): the dead or
 * ultra-low fraction against size (linear y) and L0 against size (log y), each with every
 * replicate SAE as a point and the fitted line with its 95% confidence band (tasks/scaling.ts fits
 * the per-size means, see mod/scaling/scaling.ts). The subtitle states each verdict with its interval;
 * `deadLabel` names the dead class with its resolution; `groupTitle` titles the colour legend
 * (the scaling stage colours by "architecture / initialisation" when a run trains several).
 */
export async function scalingChart(
  points: ScalingPoint[],
  fits: ScalingFitLine[] = [],
  opts: { deadLabel?: string; groupTitle?: string } = {},
): Promise<Chart> {
  if (points.length === 0) throw new Error("Scaling chart needs at least one SAE");
  const sizes = [...new Set(points.map((p) => p.size))].sort((a, b) => a - b);
  const minS = sizes[0], maxS = sizes[sizes.length - 1];
  const inits = [...new Set(points.map((p) => p.init))];
  const xAxis = {
    field: "size",
    type: "quantitative",
    title: "SAE size (features, log scale)",
    scale: { type: "log", base: 2, domain: [minS / 1.3, maxS * 1.3], nice: false },
    axis: { values: sizes, format: "d" },
  } as const;
  const color = {
    field: "init",
    type: "nominal",
    title: opts.groupTitle ?? "initialisation",
    scale: { domain: inits, range: inits.map((_, i) => SIZE_COLORS[i % SIZE_COLORS.length]) },
  } as const;
  const deadLabel = opts.deadLabel ?? "dead or ultra-low";
  const panel = (
    name: string,
    field: string,
    title: string,
    yScale: Record<string, unknown>,
    lines: Record<string, unknown>[],
  ) => {
    const y = { field: "y", type: "quantitative", title, scale: yScale };
    const layer: unknown[] = [];
    const banded = lines.filter((r) => "low" in r);
    if (banded.length > 0) {
      layer.push({
        data: { values: banded },
        mark: { type: "area", opacity: 0.18 },
        encoding: { x: xAxis, y: { ...y, field: "low" }, y2: { field: "high" }, color },
      });
    }
    if (lines.length > 0) {
      layer.push({
        data: { values: lines },
        mark: { type: "line", strokeDash: [6, 3] },
        encoding: { x: xAxis, y, color },
      });
    }
    layer.push({
      // An SAE with L0 = 0 (every feature dead) has no place on a log axis.
      data: {
        values: points.map((p) => ({ ...p, y: p[field as keyof ScalingPoint] }))
          .filter((p) => !yScale.type || (p.y as number) > 0),
      },
      mark: { type: "point", filled: true, size: 60, opacity: 0.85 },
      encoding: {
        x: xAxis,
        y,
        color,
        tooltip: [{ field: "name" }, { field: "init" }, { field: "y", title }],
      },
    });
    return { name, width: 320, height: 240, layer };
  };
  const clip01 = (v: number) => Math.min(1, Math.max(0, v));
  const deadLines = fitRows(fits, "dead_or_ultra_low_fraction", minS, maxS, clip01);
  const l0Lines = fitRows(fits, "l0", minS, maxS, (v) => 10 ** v);
  const subtitle = [
    deadLabel,
    ...fits.flatMap((f) => wrap(`${f.init}: ${f.verdict}`, 120)),
    ...(fits.length === 0 ? ["no fit (fewer than two sizes)"] : []),
  ];
  const spec = {
    title: { text: "Scaling with SAE size: dead / ultra-low features and L0", subtitle },
    hconcat: [
      panel(
        "dead",
        "deadOrUltraLowFraction",
        "fraction dead or ultra-low",
        { zero: true },
        deadLines,
      ),
      panel("l0", "l0", "L0, active features per token (log scale)", {
        type: "log",
        nice: false,
      }, l0Lines),
    ],
    resolve: { scale: { color: "shared" } },
  } as vl.TopLevelSpec;
  return await renderChart(spec);
}

/** Breaks a line at spaces into lines of at most `width` characters (chart titles do not wrap). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = `    ${word}`;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
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
