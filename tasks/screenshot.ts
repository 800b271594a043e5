/**
 * A PNG of the run report as a reader sees it: the summary, or one feature in the browser.
 *
 *   deno task screenshot --preset demo --out results/figures/report_summary.png
 *   deno task screenshot --preset study --sae f16384 --feature 123 --out feature.png
 *
 * Opens results/<run>/report/index.html from disk in headless Chromium (the report stage must
 * have run; this task does not run it), follows the deep link #<sae>/<feature> and waits until
 * the feature's detail is drawn, then captures the browser section (or, without --feature, the
 * summary section). The README's report figures are made with it, so they name their run.
 *
 * @module
 */
import { resolve } from "node:path";
import {
  CONFIG_OPTIONS,
  configSources,
  loadConfig,
  log,
  parseTaskArgs,
  runMain,
  runPaths,
  type TaskSpec,
} from "../mod/run/mod.ts";
import { exists, writeFileAtomic } from "../mod/io/mod.ts";
import { launchChromium } from "../mod/plot/mod.ts";

export const SPEC: TaskSpec = {
  name: "screenshot",
  summary: "Write a PNG of the run report: its summary, or one feature in the browser",
  details: "Reads results/<run>/report/index.html (run the report task first); writes --out.",
  options: {
    ...CONFIG_OPTIONS,
    sae: {
      type: "string",
      arg: "NAME",
      description: "SAE folder name, e.g. f1024 (with --feature)",
    },
    feature: { type: "string", arg: "I", description: "Feature index: capture it in the browser" },
    out: { type: "string", arg: "FILE", description: "PNG to write (required)" },
    width: { type: "string", arg: "PX", description: "Viewport width (default 1400)" },
  },
};

export async function main(args: string[] = Deno.args): Promise<void> {
  const { values } = parseTaskArgs(SPEC, args);
  const out = values.out as string | undefined;
  if (!out) throw new Error("--out FILE is required: where to write the PNG");
  const feature = values.feature === undefined ? null : Number(values.feature);
  if (feature !== null && !(Number.isInteger(feature) && feature >= 0)) {
    throw new Error(`--feature "${values.feature}" must be a feature index (0, 1, ...)`);
  }
  const sae = values.sae as string | undefined;
  if (feature !== null && !sae) throw new Error("--feature needs --sae NAME (e.g. f1024)");
  if (sae !== undefined && !/^f\d+(-[a-z0-9]+)*$/.test(sae)) {
    throw new Error(`--sae "${sae}" is not an SAE folder name (f<N> or f<N>-<arch>-<init>-r<r>)`);
  }
  const width = Number(values.width ?? 1400);
  if (!(Number.isInteger(width) && width >= 400)) {
    throw new Error(`--width "${values.width}" must be an integer of at least 400`);
  }
  const cfg = await loadConfig(configSources(values));
  const index = resolve(runPaths(cfg).reportIndex);
  if (!(await exists(index))) {
    throw new Error(`No report at "${index}": run deno task report --run ${cfg.run} first`);
  }

  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width, height: 1000 } });
    const problems: string[] = [];
    page.on("pageerror", (e) => problems.push(e.message));
    const hash = sae === undefined ? "" : feature === null ? `#${sae}` : `#${sae}/${feature}`;
    await page.goto(`file://${index}${hash}`);
    if (sae !== undefined) {
      await page.waitForSelector(`body[data-sae='${sae}']`, { timeout: 30_000 }).catch(() => {
        throw new Error(`The report has no SAE "${sae}" (see its SAE menu)`);
      });
    }
    if (feature !== null) {
      await page.waitForSelector(`#detail[data-feature='${feature}']`, { timeout: 30_000 })
        .catch(() => {
          throw new Error(`SAE "${sae}" has no feature ${feature} in the report`);
        });
    }
    if (problems.length) throw new Error(`The report page failed: ${problems.join("; ")}`);
    const section = page.locator(feature === null && sae === undefined ? "#summary" : "#browser");
    const png = await section.screenshot({ type: "png" });
    await writeFileAtomic(out, new Uint8Array(png));
    log(`screenshot: wrote ${out} (${hash || "#summary"} of file://${index})`);
  } finally {
    await browser.close();
  }
}

if (import.meta.main) runMain(main);
