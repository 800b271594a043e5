/**
 * Training curves as Vega-Lite charts rendered to SVG (see mod/plot/render.ts): the transformer's
 * train / validation loss against step, and the SAE sweep's MSE, L0 and dead fraction against step,
 * one colour per SAE size. Long runs are thinned to `maxPoints` rows per series (the last row is
 * always kept) so the SVG stays small; rows with non-finite values are dropped, not drawn as 0.
 *
 * @module
 */
import type * as vl from "vega-lite";
import { type Chart, renderChart, SIZE_COLORS, thin } from "./render.ts";

export interface LossRow {
  step: number;
  train_loss: number;
  val_loss?: number | null;
}

export interface SaeMetricRow {
  step: number;
  mse: number;
  l0: number;
  dead_fraction: number;
}

export interface SaeSeries {
  size: number;
  rows: SaeMetricRow[];
}

/** Train loss as a line, validation loss (where present) as a line with points. */
export async function lossCurveChart(
  rows: LossRow[],
  title: string,
  opts: { maxPoints?: number } = {},
): Promise<Chart> {
  const max = opts.maxPoints ?? 1000;
  const train = thin(
    rows.filter((r) => Number.isFinite(r.train_loss)).map((r) => ({
      step: r.step,
      split: "train",
      loss: r.train_loss,
    })),
    max,
  );
  const val = thin(
    rows.filter((r) => Number.isFinite(r.val_loss ?? NaN)).map((r) => ({
      step: r.step,
      split: "validation",
      loss: r.val_loss as number,
    })),
    max,
  );
  if (train.length + val.length === 0) throw new Error(`Loss curve "${title}" has no finite loss`);
  const color = {
    field: "split",
    type: "nominal",
    title: "split",
    scale: { domain: ["train", "validation"], range: [SIZE_COLORS[0], SIZE_COLORS[1]] },
  } as const;
  const encoding = {
    x: { field: "step", type: "quantitative", title: "step" },
    y: { field: "loss", type: "quantitative", title: "cross-entropy loss", scale: { zero: false } },
    color,
  } as const;
  const layer: unknown[] = [];
  if (train.length) layer.push({ data: { values: train }, mark: "line", encoding });
  if (val.length) {
    layer.push({
      data: { values: val },
      mark: { type: "line", point: val.length <= 200 },
      encoding,
    });
  }
  const spec = { title, width: 480, height: 280, layer } as vl.TopLevelSpec;
  return await renderChart(spec);
}

const SAE_PANELS = [
  { field: "mse", title: "MSE" },
  { field: "l0", title: "L0 (active features per token)" },
  { field: "dead_fraction", title: "dead fraction" },
] as const;

/** Three panels (MSE, L0, dead fraction) against step, one line per SAE size. */
export async function saeMetricsChart(
  series: SaeSeries[],
  opts: { title?: string; maxPoints?: number } = {},
): Promise<Chart> {
  if (series.length === 0) throw new Error("SAE metrics chart needs at least one size");
  const max = opts.maxPoints ?? 1000;
  const sizes = series.map((s) => String(s.size));
  const color = {
    field: "SAE size",
    type: "nominal",
    title: "SAE size",
    scale: { domain: sizes, range: sizes.map((_, i) => SIZE_COLORS[i % SIZE_COLORS.length]) },
  } as const;
  const spec = {
    title: opts.title ?? "SAE training metrics by size",
    hconcat: SAE_PANELS.map(({ field, title }) => ({
      name: field,
      width: 260,
      height: 220,
      data: {
        values: series.flatMap(({ size, rows }) =>
          thin(rows.filter((r) => Number.isFinite(r[field])), max).map((r) => ({
            "SAE size": String(size),
            step: r.step,
            value: r[field],
          }))
        ),
      },
      mark: { type: "line" },
      encoding: {
        x: { field: "step", type: "quantitative", title: "step" },
        y: { field: "value", type: "quantitative", title },
        color,
      },
    })),
    resolve: { scale: { color: "shared" } },
  } as vl.TopLevelSpec;
  return await renderChart(spec);
}
