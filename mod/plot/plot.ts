/**
 * Charts for the "read the dictionary" stages: the entry point that re-exports the chart builders
 * (mod/plot/density.ts, mod/plot/training.ts) and writes charts to disk.
 *
 * Every builder returns `{ spec, svg }`: the Vega-Lite spec with its data inline, and the SVG that
 * vega renders headless (mod/plot/render.ts). `writeChart` writes `<path>.svg` atomically and, on
 * request, `<path>.png` through headless Chromium (mod/plot/png.ts) and `<path>.vl.json` (the spec,
 * for an interactive report). A missing Chromium skips the PNG with one line on stderr.
 *
 * Deno permissions: SVG needs only --allow-write for the output folder; PNG adds
 * --allow-run=<chromium> --allow-env --allow-sys=homedir and read/write on the temp folder.
 *
 * @module
 */
import { writeFileAtomic, writeJsonAtomic } from "../io/mod.ts";
import { type PngOptions, pngUnavailable, svgToPng } from "./png.ts";
import type { Chart } from "./render.ts";

export { type Chart, renderChart } from "./render.ts";
export {
  densityChart,
  densityOverlayChart,
  logDensityChart,
  scalingChart,
  type ScalingFitLine,
  type ScalingPoint,
  type SizedHistogram,
} from "./density.ts";
export {
  lossCurveChart,
  type LossRow,
  type SaeMetricRow,
  saeMetricsChart,
  type SaeSeries,
} from "./training.ts";

export interface WriteChartOptions extends PngOptions {
  /** Also write `<path>.png` (skipped, with one line on stderr, when Chromium is unavailable). */
  png?: boolean;
  /** Also write the Vega-Lite spec as `<path>.vl.json`. */
  spec?: boolean;
}

export interface WrittenChart {
  svg: string;
  png?: string;
  spec?: string;
  /** Why the PNG was not written, when it was asked for and skipped. */
  pngSkipped?: string;
}

/** Writes one chart; see `writeCharts`. `pathWithoutExt` gets .svg, .png, .vl.json appended. */
export async function writeChart(
  pathWithoutExt: string,
  chart: Chart,
  opts: WriteChartOptions = {},
): Promise<WrittenChart> {
  return (await writeCharts([{ path: pathWithoutExt, chart }], opts))[0];
}

/** Writes several charts, sharing one browser for their PNGs. */
export async function writeCharts(
  items: { path: string; chart: Chart }[],
  opts: WriteChartOptions = {},
): Promise<WrittenChart[]> {
  const out: WrittenChart[] = [];
  for (const { path, chart } of items) {
    const written: WrittenChart = { svg: `${path}.svg` };
    await writeFileAtomic(written.svg, chart.svg);
    if (opts.spec) {
      written.spec = `${path}.vl.json`;
      await writeJsonAtomic(written.spec, chart.spec);
    }
    out.push(written);
  }
  if (!opts.png || items.length === 0) return out;
  const why = await pngUnavailable(opts);
  if (why) {
    console.error(`PNG skipped for ${items.length} chart(s): ${why}`);
    for (const w of out) w.pngSkipped = why;
    return out;
  }
  const pngs = await svgToPng(items.map((i) => i.chart.svg), opts);
  for (let i = 0; i < items.length; i++) {
    out[i].png = `${items[i].path}.png`;
    await writeFileAtomic(out[i].png as string, pngs[i]);
  }
  return out;
}
