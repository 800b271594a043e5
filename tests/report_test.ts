/**
 * The run report: its encodings (3-digit numbers, token table, whole-character token texts), and
 * the page built for a real `test`-preset run, opened from disk in headless Chromium: plots drawn,
 * the feature list filtered, a feature's logits and shaded examples against the Parquet files,
 * Arabic right to left, deep links, no console errors and no failed requests.
 *
 * The pipeline runs once (about a minute) and every step shares it. The browser steps are skipped,
 * with the reason printed, where /usr/bin/chromium is absent.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import * as arrow from "apache-arrow";
import { get_encoding } from "tiktoken";
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertLess,
  assertMatch,
  assertThrows,
} from "./assert.ts";
import { readParquet, writeParquet } from "../mod/io/mod.ts";
import { contextTexts, escapeHtml, round3, TokenTable } from "../mod/report/mod.ts";
import { CLIENT_JS } from "../mod/report/mod.ts";
import { markdownTable } from "../mod/report/tables.ts";
import { inlineSvg } from "../mod/report/mod.ts";
import { DEFAULT_CHROMIUM, launchChromium } from "../mod/plot/mod.ts";
import { runTask } from "./helpers.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");

Deno.test("round3() keeps three significant digits", () => {
  assertEquals(
    [0.012345, 123456, 0, -1.2345e-7, 1, 0.9996].map(round3),
    [0.0123, 123000, 0, -1.23e-7, 1, 1],
  );
  assertEquals(JSON.stringify([0.000123456].map(round3)), "[0.000123]");
});

Deno.test("contextTexts() gives each character to the token that completes it", () => {
  const enc = get_encoding("gpt2");
  try {
    const text = "日本語のテキスト and عربي";
    const ids = Array.from(enc.encode_ordinary(text));
    const bytes = (id: number) => enc.decode_single_token_bytes(id);
    const single = ids.map((id) => new TextDecoder().decode(bytes(id)));
    assert(single.some((s) => s.includes("\ufffd")), "GPT-2 splits some characters over tokens");
    const texts = contextTexts(ids, bytes);
    assertEquals(texts.length, ids.length);
    assertEquals(texts.join(""), text);
    assert(texts.every((s) => !s.includes("\ufffd")), JSON.stringify(texts));
    assert(texts.includes(""), "a token holding only a character's first bytes shows nothing");
    // A window that starts inside a character shows the orphan bytes as U+FFFD.
    const cut = ids.findIndex((_, i) => texts[i] === "") + 1;
    assertEquals(contextTexts(ids.slice(cut), bytes)[0][0], "\ufffd");
  } finally {
    enc.free();
  }
});

Deno.test("TokenTable numbers strings by falling frequency", () => {
  const t = new TokenTable();
  const ids = ["a", "b", "b", "c", "b", "c"].map((s) => t.intern(s));
  const { strings, remap } = t.finish();
  assertEquals(strings, ["b", "c", "a"]);
  assertEquals(ids.map((i) => strings[remap[i]]), ["a", "b", "b", "c", "b", "c"]);
});

Deno.test("the browser script parses, and inlined SVGs and HTML text are made safe", () => {
  new Function(CLIENT_JS); // a syntax error throws here
  const svg = inlineSvg(
    `<?xml version="1.0"?><svg><clipPath id="c"/><g clip-path="url(#c)"/></svg>`,
    "p",
  );
  assertEquals(svg, `<svg><clipPath id="p-c"/><g clip-path="url(#p-c)"/></svg>`);
  assertEquals(
    escapeHtml(`<a href="x">'&'</a>`),
    "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;",
  );
});

const hasChromium = await Deno.stat(DEFAULT_CHROMIUM).then(() => true, () => false);
if (!hasChromium) {
  console.log(`report_test: browser checks skipped: no Chromium at ${DEFAULT_CHROMIUM}`);
}

/** A PNG's width and height, from its IHDR chunk. */
function pngSize(png: Uint8Array): { width: number; height: number } {
  assertEquals([...png.slice(1, 4)], [80, 78, 71], "a PNG signature");
  const v = new DataView(png.buffer, png.byteOffset);
  return { width: v.getUint32(16), height: v.getUint32(20) };
}

function col(t: arrow.Table, name: string): unknown[] {
  return Array.from(t.getChild(name)!, (v) => (typeof v === "bigint" ? Number(v) : v));
}

/** The explanations fixture: what the autointerp stage will write (two about Arabic). */
function explanationsFixture(features: number[]): arrow.Table {
  const text = ["Arabic letters", "the end of a sentence", "arabic definite article", null];
  const sim = [62.5, 18.25, 44, null];
  return arrow.tableFromJSON(features.map((f, i) => ({
    feature: f,
    explanation: text[i],
    simulation_score: sim[i],
    detection_f1: i === 3 ? null : 0.5 + i / 10,
    fuzzing_f1: i === 3 ? null : 0.4,
    explainer_model: "gpt-4o-mini",
    simulator_model: "gpt-4o-mini",
    error: i === 3 ? "HTTP 500 from the API" : null,
  })));
}

Deno.test("the report task writes an offline page whose browser shows the run's features", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "rtd-report-" });
  const args = [
    "--preset",
    "test",
    "--set",
    `dataDir=${dir}/data`,
    "--set",
    `resultsDir=${dir}/results`,
    "--shard-size",
    "16",
  ];
  // The deno.json task's permissions, with the temp folder in place of data/ and results/.
  const flags = [
    `--allow-read=${ROOT},${dir},/tmp,${DEFAULT_CHROMIUM}`,
    `--allow-write=${dir},/tmp`,
    "--allow-env",
    "--allow-sys=homedir",
    `--allow-run=${DEFAULT_CHROMIUM}`,
  ];
  const results = `${dir}/results/test`;
  const index = `${results}/report/index.html`;
  try {
    // Steering is not upstream of the report (the sweep runs it before): run it as the sweep does.
    const steered = await runTask("steer", args.slice(0, -2), flags);
    assertEquals(steered.code, 0, steered.stderr);
    const first = await runTask("report", args, flags);
    assertEquals(first.code, 0, first.stderr);
    assert(first.stderr.includes(`report: open file://${index}`), first.stderr);

    await t.step("index.html and the lazily loaded data files are written", async () => {
      const html = await Deno.readTextFile(index);
      assertLess(html.length, 400_000, "the page itself stays small");
      assert(!/<(script|img|link)[^>]+(src|href)="(https?:)?\/\//.test(html), "nothing remote");
      const files = [...Deno.readDirSync(`${results}/report/data`)].map((e) => e.name).sort();
      const want = ["f128.js", "f64.js"];
      for (let k = 0; k < 8; k++) want.push(`f128-${k}.js`);
      for (let k = 0; k < 4; k++) want.push(`f64-${k}.js`);
      assertEquals(files, want.sort());
      const fits = await readParquet(`${results}/scaling_fits.parquet`);
      for (const v of col(fits, "verdict") as string[]) {
        assert(html.includes(escapeHtml(v)), `the page states the verdict "${v}"`);
      }
    });

    // The autointerp stage's output, for the "present" case: the report reruns and shows it.
    const stats64 = await readParquet(`${results}/sae/f64/feature_stats.parquet`);
    const count64 = col(stats64, "count") as number[];
    const maxAct64 = col(stats64, "max_activation") as number[];
    const live = count64.map((c, f) => c > 0 ? f : -1).filter((f) => f >= 0);
    const strongest = live.reduce((a, b) => maxAct64[b] > maxAct64[a] ? b : a);
    const explained = [strongest, ...live.filter((f) => f !== strongest).slice(0, 3)];
    await writeParquet(
      `${results}/sae/f64/explanations.parquet`,
      explanationsFixture(explained),
    );
    const second = await runTask("report", args, flags);
    assertEquals(second.code, 0, second.stderr);
    assertMatch(second.stderr, /report: running \(input "explanations.parquet"/);
    assertMatch(second.stderr, /\(4 explained\)/);

    await t.step({
      name: "the page works from file:// in headless Chromium",
      ignore: !hasChromium,
      fn: async (t) => {
        await browserChecks(t, { results, index, stats64, strongest, explained });
      },
    });

    await t.step("deno task tables prints the run's numbers as Markdown", async () => {
      const out = await runTask("tables", args.slice(0, -2), flags);
      assertEquals(out.code, 0, out.stderr);
      const summary = await readParquet(`${results}/sae/summary.parquet`);
      const l0 = (col(summary, "l0") as number[])[0].toFixed(1);
      const fve = (col(summary, "fve") as number[])[0].toFixed(3);
      assertMatch(
        out.stdout,
        new RegExp(`\\| f64 \\| relu \\| independent \\| ${l0} \\| ${fve} \\|`),
      );
      for (
        const h of ["### stages", "| train |", "### transformer", "### fits against log10 size"]
      ) {
        assert(out.stdout.includes(h), h);
      }
      assertEquals(
        markdownTable(["a", "b"], [["1", "x|y"]]),
        "| a | b |\n| --- | --- |\n| 1 | x\\|y |",
      );
      assertThrows(
        () => markdownTable(["a"], [["1", "2"]]),
        /row 0 has 2 cells, the header 1/,
      );
    });

    await t.step({
      name: "deno task screenshot captures a feature and the summary as PNGs",
      ignore: !hasChromium,
      fn: async () => {
        const shotArgs = args.slice(0, -2);
        const png = `${dir}/results/feature.png`;
        const shot = await runTask("screenshot", [
          ...shotArgs,
          ...["--sae", "f64", "--feature", String(strongest), "--out", png],
        ], flags);
        assertEquals(shot.code, 0, shot.stderr);
        assertMatch(shot.stderr, new RegExp(`#f64/${strongest} of file://`));
        const { width, height } = pngSize(await Deno.readFile(png));
        assert(
          width > 1000 && width <= 1400,
          `the browser section spans the 1400 px page: ${width}`,
        );
        assert(height > 300, `height ${height}`);
        const summary = await runTask("screenshot", [...shotArgs, "--out", `${dir}/s.png`], flags);
        assertEquals(summary.code, 0, summary.stderr);
        const bad = await runTask("screenshot", [
          ...shotArgs,
          ...["--sae", "f64", "--feature", "64", "--out", `${dir}/x.png`],
        ], flags);
        assertEquals(bad.code, 1);
        assertMatch(bad.stderr, /SAE "f64" has no feature 64 in the report/);
        const noOut = await runTask("screenshot", shotArgs, flags);
        assertMatch(noOut.stderr, /--out FILE is required/);
      },
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function browserChecks(
  t: Deno.TestContext,
  ctx: {
    results: string;
    index: string;
    stats64: arrow.Table;
    strongest: number;
    explained: number[];
  },
): Promise<void> {
  const browser = await launchChromium({ chromiumPath: DEFAULT_CHROMIUM });
  const problems: string[] = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console: ${m.text()}`);
    });
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("requestfailed", (r) => problems.push(`failed request: ${r.url()}`));
    page.on("request", (r) => {
      if (!r.url().startsWith("file://")) problems.push(`network request: ${r.url()}`);
    });
    const url = `file://${ctx.index}`;
    await page.goto(url);
    await page.waitForSelector("body[data-sae='f64']");

    await t.step("every plot is drawn", async () => {
      const sizes = await page.$$eval(
        "figure.plot",
        (figs) =>
          figs.map((f) => {
            const r = f.querySelector("svg")?.getBoundingClientRect();
            return [f.getAttribute("data-plot"), r ? r.width : 0, r ? r.height : 0];
          }),
      );
      const names = sizes.map((s) => s[0]).sort();
      assertEquals(names, [
        "density_f128",
        "density_f64",
        "density_overlay",
        "log_density_f128",
        "sae_metrics",
        "scaling",
        "transformer_loss",
      ]);
      for (const [name, w, h] of sizes) assert((w as number) > 50 && (h as number) > 50, `${name}`);
      const fits = await readParquet(`${ctx.results}/scaling_fits.parquet`);
      const slope = col(fits, "slope")[0] as number;
      const key = `${col(fits, "architecture")[0]}/${col(fits, "init")[0]}/${
        col(fits, "statistic")[0]
      }`;
      assertEquals(await page.textContent(`#fit tr[data-fit='${key}'] .slope`), slope.toFixed(3));
      const comp = await page.$$eval("#summary table:first-of-type tbody tr", (r) => r.length);
      assertEquals(comp, 8);
    });

    const count = async () => Number(await page.getAttribute("#fcount", "data-count"));
    await t.step("filtering the feature list changes the count as the data says", async () => {
      assertEquals(await count(), 64);
      const density = col(ctx.stats64, "density") as number[];
      const distinct = [...new Set(density)].sort((a, b) => a - b);
      const mid = distinct.length >> 1;
      const threshold = (distinct[mid - 1] + distinct[mid]) / 2;
      await page.fill("#f-dmin", threshold.toPrecision(6));
      assertEquals(await count(), density.filter((d) => d >= threshold).length);
      await page.fill("#f-dmin", "");
      await page.check("#f-live");
      assertEquals(await count(), density.filter((d) => d > 0).length);
      await page.uncheck("#f-live");
      await page.fill("#f-text", "ARABIC");
      assertEquals(await count(), 2);
      const rows = await page.$$eval(
        ".frow",
        (r) => r.map((x) => Number(x.getAttribute("data-f"))),
      );
      assertEquals(
        rows.sort((a, b) => a - b),
        [ctx.explained[0], ctx.explained[2]].sort((a, b) => a - b),
      );
      await page.fill("#f-text", "");
      await page.fill("#f-smin", "40");
      assertEquals(await count(), 2, "scores 62.5 and 44");
      await page.fill("#f-smin", "");
      assertEquals(await count(), 64);
    });

    await t.step("clicking a feature shows its logits and its shaded examples", async () => {
      const f = ctx.strongest;
      await page.fill("#f-id", String(f));
      await page.click(`.frow[data-f="${f}"]`);
      await page.waitForSelector(`#detail[data-feature="${f}"][data-loaded="1"]`);
      assert(page.url().endsWith(`#f64/${f}`), `the hash links to the feature: ${page.url()}`);
      assertEquals(await page.textContent("#d-expl"), "Arabic letters");
      assertEquals(await page.textContent("#d-sim"), "62.5");

      const lg = await readParquet(`${ctx.results}/sae/f64/logits.parquet`);
      const rows = lg.toArray().filter((r) => r.feature === f);
      for (const [sign, cls] of [["positive", "lg-pos"], ["negative", "lg-neg"]]) {
        const want = rows.filter((r) => r.sign === sign).sort((a, b) => a.rank - b.rank);
        const got = await page.$$eval(
          `tr.${cls}`,
          (tr) =>
            tr.map((r) => [r.getAttribute("data-token"), Number(r.getAttribute("data-weight"))]),
        );
        assertEquals(got.length, 10, `${sign} logits`);
        assertEquals(want.length, 10);
        got.forEach(([tok, w], i) => {
          assertEquals(tok, want[i].token_text);
          assertAlmostEquals(w as number, want[i].weight, 5e-3 * Math.abs(want[i].weight));
        });
      }

      const ex = await readParquet(`${ctx.results}/sae/f64/examples.parquet`);
      const top = ex.toArray().find((r) => r.feature === f && r.kind === "top" && r.rank === 0)!;
      const wantActs = Array.from(top.context_acts as Float32Array);
      const spans = await page.$$eval(
        `.ex[data-kind="top"][data-rank="0"] .t`,
        (s) =>
          s.map((x) => [
            Number(x.getAttribute("data-act")),
            x.getAttribute("title"),
            (x as unknown as { style: { backgroundColor: string } }).style.backgroundColor,
          ]),
      );
      assertEquals(spans.length, wantActs.length);
      spans.forEach(([a, title], i) => {
        assertAlmostEquals(a as number, wantActs[i], 5e-3 * wantActs[i] + 1e-12);
        assert((title as string).startsWith("activation "), title as string);
      });
      const centre = spans[top.centre_index as number];
      assertMatch(centre[2] as string, /rgba?\(255, 120, 0/, "the max token is shaded");
      const kinds = new Set(
        ex.toArray().filter((r) => r.feature === f).map((r) => r.kind as string),
      );
      const groups = await page.$$eval(
        ".exgroup",
        (g) => [...new Set(g.map((x) => x.getAttribute("data-kind")))],
      );
      assertEquals(groups.sort(), [...kinds].sort());
      const steering = (await readParquet(`${ctx.results}/sae/f64/steering.parquet`)).toArray()
        .filter((r) => r.feature === f);
      const shown = await page.$$eval(
        "table.steer tbody tr",
        (tr) => tr.map((r) => r.lastElementChild?.textContent),
      );
      assert(steering.length > 0, "the steer stage steers with the strongest feature");
      assertEquals(shown, steering.map((r) => String(r.steered)));
      await page.$eval("#browser", (el) => el.scrollIntoView());
      await page.screenshot({ path: `${ROOT}/tests/artifacts/report.png` });
    });

    await t.step("Arabic lines run right to left; token text is escaped", async () => {
      // Page-side code as text: this file is type-checked without the DOM library.
      const dirs = await page.evaluate(`(() => {
        const box = document.createElement("div");
        box.innerHTML = RTD.exampleHtml([" بسم", " الله", " الرحمن"], [0, 1, 0.5], 1, 1) +
          RTD.exampleHtml(["The", " cat", " قال"], [0, 0, 1], 1, 2) +
          RTD.exampleHtml(["<b>x</b>", "\\n", " "], [0, 0, 0], 1, 0);
        document.body.appendChild(box);
        const lines = [...box.querySelectorAll(".ex")];
        const out = {
          dirs: lines.map((l) => getComputedStyle(l).direction),
          text: lines[2].textContent,
          bold: lines[2].querySelectorAll("b").length,
        };
        box.remove();
        return out;
      })()`);
      assertEquals(dirs, { dirs: ["rtl", "ltr", "ltr"], text: "<b>x</b>↵·", bold: 0 });
      // A real line of the run that starts in Arabic (the test corpus has Arabic Wikipedia).
      const ex = await readParquet(`${ctx.results}/sae/f64/examples.parquet`);
      const arabic = ex.toArray().find((r) =>
        /^\P{L}*[\u0600-\u06ff]/u.test(Array.from(r.context_text as string[]).join(""))
      );
      if (!arabic) {
        console.log("report_test: no example of this run starts in Arabic; fragment checked only");
        return;
      }
      await page.fill("#f-id", "");
      await page.evaluate(`location.hash = "#f64/${arabic.feature}"`);
      await page.waitForSelector(`#detail[data-feature="${arabic.feature}"][data-loaded="1"]`);
      const line = `.ex[data-kind="${arabic.kind}"][data-rank="${arabic.rank}"]`;
      assertEquals(
        await page.$eval(
          line,
          (l) =>
            (globalThis as unknown as { getComputedStyle(e: unknown): { direction: string } })
              .getComputedStyle(l).direction,
        ),
        "rtl",
      );
    });

    await t.step("a deep link opens that SAE and feature", async () => {
      const p2 = await browser.newPage();
      p2.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
      p2.on("requestfailed", (r) => problems.push(`failed request: ${r.url()}`));
      await p2.goto(`${url}#f128/5`);
      await p2.waitForSelector(`#detail[data-feature="5"][data-loaded="1"]`);
      assertEquals(await p2.inputValue("#sae"), "f128");
      assertMatch((await p2.textContent("#fhead"))!, /^f128 \/ feature 5/);
      // A hash change on the open page moves to another feature of another shard.
      await p2.evaluate(() => location.hash = "#f64/40");
      await p2.waitForSelector(`#detail[data-feature="40"][data-loaded="1"]`);
      assertEquals(await p2.inputValue("#sae"), "f64");
      await p2.close();
    });
    assertEquals(problems, []);
  } finally {
    await browser.close();
  }
}
