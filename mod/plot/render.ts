/**
 * Headless chart rendering: a Vega-Lite spec is compiled to Vega, run in a `vega.View` with no
 * renderer, and serialised with `view.toSVG()`. No DOM, no canvas, no network: the view gets a
 * loader that refuses every URL and file, so a spec must carry its data inline (`data.values`).
 * Needs no Deno permissions (vega's npm modules are read by the runtime itself).
 *
 * Vega measures text without a canvas by estimating glyph widths, so labels are placed from
 * estimates; that is good enough for axes and titles.
 *
 * @module
 */
import * as vega from "vega";
import * as vl from "vega-lite";

/** A chart: the Vega-Lite spec (data inline) and the SVG it renders to. */
export interface Chart {
  spec: vl.TopLevelSpec;
  svg: string;
}

export const VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json";

/** Default look: white background, readable font sizes, no interactive padding. */
export const BASE_CONFIG = {
  background: "white",
  font: "sans-serif",
  title: { fontSize: 14, subtitleFontSize: 11, anchor: "start" },
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12 },
  view: { stroke: "#ddd" },
} as const;

/** A colour per SAE size in sweep order (Tableau 10, colour-blind friendly enough for 6 sizes). */
export const SIZE_COLORS = [
  "#4e79a7",
  "#f28e2b",
  "#e15759",
  "#76b7b2",
  "#59a14f",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
  "#bab0ac",
];

const offlineLoader: vega.Loader = {
  load: (uri) => Promise.reject(refused(uri)),
  sanitize: (uri) => Promise.reject(refused(uri)),
  http: (uri) => Promise.reject(refused(uri)),
  file: (name) => Promise.reject(refused(name)),
};

function refused(what: string): Error {
  return new Error(`Chart tried to load "${what}": charts render offline, pass data inline`);
}

/** Compiles and renders a Vega-Lite spec to SVG, offline; vega's logged errors are thrown. */
export async function renderChart(spec: vl.TopLevelSpec): Promise<Chart> {
  const full = {
    $schema: VEGA_LITE_SCHEMA,
    ...spec,
    config: { ...BASE_CONFIG, ...(spec.config ?? {}) },
  } as vl.TopLevelSpec;
  const url = findUrl(full);
  if (url !== undefined) throw refused(String(url));
  // Vega tags every data row with a symbol id in place; compile a copy to keep `spec` plain.
  const vgSpec = vl.compile(structuredClone(full)).spec;
  // Vega logs a failed load and renders an empty chart; collect errors so that the caller fails.
  const errors: string[] = [];
  const view = new vega.View(vega.parse(vgSpec), {
    renderer: "none",
    loader: offlineLoader,
    logger: collectingLogger(errors),
    logLevel: vega.Warn,
  });
  try {
    const svg = await view.toSVG();
    if (errors.length) throw new Error(`Chart failed to render: ${errors.join("; ")}`);
    return { spec: full, svg };
  } finally {
    view.finalize();
  }
}

type Logger = NonNullable<vega.ViewOptions["logger"]>;

function collectingLogger(errors: string[]): Logger {
  let level = vega.Warn;
  const text = (args: unknown[]) =>
    args.map((a) => (a instanceof Error ? a.message : String(a))).join(" ");
  const logger: Logger = {
    level(l?: number) {
      if (l === undefined) return level;
      level = l;
      return logger;
    },
    error(...args: unknown[]) {
      errors.push(text(args));
      return logger;
    },
    warn(...args: unknown[]) {
      // A failed load is only a warning to vega; here it means a chart with missing data.
      if (String(args[0]).startsWith("Loading failed")) errors.push(text(args));
      else if (level >= vega.Warn) console.warn(`Chart warning: ${text(args)}`);
      return logger;
    },
    info() {
      return logger;
    },
    debug() {
      return logger;
    },
  };
  return logger;
}

/** The first `url` anywhere in a spec (data or image); charts carry everything inline. */
function findUrl(node: unknown): unknown {
  if (Array.isArray(node)) {
    for (const item of node) {
      const found = findUrl(item);
      if (found !== undefined) return found;
    }
  } else if (node && typeof node === "object") {
    for (const [key, value] of Object.entries(node)) {
      if (key === "url") return value;
      if (key === "values") continue; // inline rows may hold any field names
      const found = findUrl(value);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/** Width and height of a rendered SVG, from its root element. */
export function svgSize(svg: string): { width: number; height: number } {
  const root = /<svg\b[^>]*>/.exec(svg)?.[0] ?? "";
  const width = Number(/\bwidth="([\d.]+)"/.exec(root)?.[1]);
  const height = Number(/\bheight="([\d.]+)"/.exec(root)?.[1]);
  if (!(width > 0 && height > 0)) throw new Error(`SVG root has no width and height: "${root}"`);
  return { width, height };
}

/** Keeps at most `max` rows by even striding, always keeping the last (the final value matters). */
export function thin<T>(rows: T[], max: number): T[] {
  if (rows.length <= max) return rows;
  const stride = Math.ceil(rows.length / max);
  const out = rows.filter((_, i) => i % stride === 0);
  if (out[out.length - 1] !== rows[rows.length - 1]) out.push(rows[rows.length - 1]);
  return out;
}
