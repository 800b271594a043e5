/**
 * SVG to PNG through headless Chromium driven by playwright-core. Vega cannot make PNGs under Deno
 * without node-canvas (`view.toCanvas()` fails: "CanvasRenderer is missing a valid canvas or
 * context"), so the browser rasterises the SVG that vega wrote. One browser serves a whole batch of
 * charts, because its start (3-7 s) costs far more than a screenshot.
 *
 * Chromium is optional: `pngUnavailable()` says why PNGs cannot be made (no browser at
 * CHROMIUM_PATH or /usr/bin/chromium, or a missing Deno permission) and callers skip them. Every
 * request the page makes is aborted, so rendering is offline.
 *
 * Deno permissions: --allow-run=<chromium> --allow-env --allow-sys=homedir --allow-read (node_modules,
 * the chromium path and the temp folder) --allow-write=<temp folder> (playwright's artifacts).
 * playwright's is-wsl probe stats /proc/sys/fs/binfmt_misc/WSLInterop at import time, which Deno
 * only allows under --allow-all; setting `__IS_WSL_TEST__` before the import turns that probe
 * into a function that the launch path never calls.
 *
 * @module
 */
import { svgSize } from "./render.ts";

export const DEFAULT_CHROMIUM = "/usr/bin/chromium";

/** The command that installs Chromium where none was found (README: set-up). */
export const CHROMIUM_FIX = "bash tasks/setup.sh (or Debian: sudo apt-get install -y chromium)";

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/** The PNG flags a task needs on the deno command line, for messages. */
export const PNG_PERMISSIONS =
  "--allow-run=<chromium> --allow-env --allow-sys=homedir --allow-read --allow-write=<tmp>";

export interface PngOptions {
  /** Browser binary (default: $CHROMIUM_PATH, else /usr/bin/chromium). */
  chromiumPath?: string;
  /** Device pixels per SVG pixel (default 2). */
  scale?: number;
}

/** The browser path to use: the option, else $CHROMIUM_PATH when readable, else the default. */
export function chromiumPath(opts: PngOptions = {}): string {
  if (opts.chromiumPath) return opts.chromiumPath;
  try {
    return Deno.env.get("CHROMIUM_PATH") || DEFAULT_CHROMIUM;
  } catch {
    return DEFAULT_CHROMIUM;
  }
}

/** Null when PNGs can be made, else one line saying why not. */
export async function pngUnavailable(opts: PngOptions = {}): Promise<string | null> {
  const path = chromiumPath(opts);
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) return `Chromium "${path}" is not a file`;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      return `Chromium not found at "${path}" (PNG plots and report screenshots need it); ` +
        `fix: ${CHROMIUM_FIX}, or set CHROMIUM_PATH to a Chromium binary`;
    }
    return `Cannot check Chromium "${path}": ${(e as Error).message}`;
  }
  const tmp = tempDir();
  const missing: string[] = [];
  const want = async (desc: Deno.PermissionDescriptor, flag: string) => {
    if ((await Deno.permissions.query(desc)).state !== "granted") missing.push(flag);
  };
  await want({ name: "run", command: path }, `--allow-run=${path}`);
  await want({ name: "env" }, "--allow-env");
  await want({ name: "sys", kind: "homedir" }, "--allow-sys=homedir");
  await want({ name: "read", path: tmp }, `--allow-read=${tmp}`);
  await want({ name: "write", path: tmp }, `--allow-write=${tmp}`);
  return missing.length ? `PNG needs Deno permissions ${missing.join(" ")}` : null;
}

/**
 * Starts headless Chromium (at `opts.chromiumPath`, CHROMIUM_PATH or /usr/bin/chromium) through
 * playwright-core, with the WSL-probe workaround above; the caller closes it.
 */
export async function launchChromium(
  opts: PngOptions = {},
): Promise<import("playwright-core").Browser> {
  if (!Deno.env.get("__IS_WSL_TEST__")) Deno.env.set("__IS_WSL_TEST__", "1");
  const { chromium } = await import("playwright-core");
  return await chromium.launch({ executablePath: chromiumPath(opts), args: CHROMIUM_ARGS });
}

/** Rasterises SVG documents with one headless Chromium; returns one PNG per input, in order. */
export async function svgToPng(svgs: string[], opts: PngOptions = {}): Promise<Uint8Array[]> {
  if (svgs.length === 0) return [];
  const scale = opts.scale ?? 2;
  const browser = await launchChromium(opts);
  try {
    const context = await browser.newContext({ deviceScaleFactor: scale });
    await context.route("**/*", (route) => route.abort());
    const page = await context.newPage();
    const out: Uint8Array[] = [];
    for (const svg of svgs) {
      const { width, height } = svgSize(svg);
      await page.setViewportSize({ width: Math.ceil(width), height: Math.ceil(height) });
      await page.setContent(
        `<!doctype html><html><body style="margin:0;background:white">${svg}</body></html>`,
      );
      const png = await page.screenshot({
        type: "png",
        clip: { x: 0, y: 0, width: Math.ceil(width), height: Math.ceil(height) },
      });
      out.push(new Uint8Array(png));
    }
    return out;
  } finally {
    await browser.close();
  }
}

function tempDir(): string {
  try {
    return Deno.env.get("TMPDIR") || "/tmp";
  } catch {
    return "/tmp";
  }
}
