/**
 * The report's index.html: the run summary rendered here (tables, the plots' SVG inline, the
 * scaling fits and their verdicts) and the feature browser's shell, with the CSS and the browser
 * script inline.
 * The page needs no server and no network: per-SAE data files are plain scripts beside it
 * (data/f<N>.js and data/f<N>-<k>.js) that the browser script loads when they are needed.
 *
 * @module
 */
import { escapeHtml as esc, jsonForHtml } from "./compact.ts";
import type { Plot, RunSummary } from "./summary.ts";
import { REPORT_CSS } from "./style.ts";
import { CLIENT_JS } from "./browser_script.ts";

/** What the browser script needs to find each SAE's data files. */
export interface PageManifest {
  run: string;
  saes: {
    /** The SAE's folder name (f<N> for the primary ones) and the stem of its data files. */
    key: string;
    size: number;
    architecture: string;
    shards: number;
    shardSize: number;
    explained: number;
  }[];
}

function num(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "–";
  if (x !== 0 && (Math.abs(x) < 1e-3 || Math.abs(x) >= 1e6)) return x.toExponential(digits - 1);
  return x.toFixed(digits);
}

function pct(x: number): string {
  return Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : "–";
}

function int(x: number): string {
  return Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "–";
}

function table(head: string[], rows: string[][], cls = ""): string {
  const th = head.map((h) => `<th>${h}</th>`).join("");
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join("")}</tr>`).join("\n");
  return `<table class="${cls}"><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

/** An SVG document made safe to inline: no XML prolog, ids prefixed so plots cannot clash. */
export function inlineSvg(svg: string, prefix: string): string {
  return svg.replace(/<\?xml[^>]*\?>/g, "").replace(/<!DOCTYPE[^>]*>/gi, "")
    .replace(/\bid="([^"]+)"/g, `id="${prefix}-$1"`)
    .replace(/url\(#([^)]+)\)/g, `url(#${prefix}-$1)`)
    .replace(/href="#([^"]+)"/g, `href="#${prefix}-$1"`).trim();
}

function figure(p: Plot | undefined): string {
  if (!p) return "";
  const body = p.svg === null
    ? `<p class="missing">Plot missing: ${esc(p.path)} (run the scaling stage)</p>`
    : inlineSvg(p.svg, `plot-${p.name}`);
  return `<figure class="plot" data-plot="${esc(p.name)}">${body}<figcaption>${
    esc(p.title)
  }</figcaption></figure>`;
}

function summaryHtml(s: RunSummary): string {
  const plot = (name: string) => figure(s.plots.find((p) => p.name === name));
  const t = s.transformer;
  const gap = t.finalValLoss === null ? null : t.finalValLoss - t.unigramEntropy;
  const flat = (o: unknown) =>
    Object.entries((o ?? {}) as Record<string, unknown>).filter(([, v]) => typeof v !== "object")
      .map(([k, v]) => `${esc(k)} ${esc(String(v))}`).join(", ");
  const cfgText = t.config
    ? `${flat(t.config.model)}; hook ${esc(String(t.config.hook_name ?? ""))}. Training: ${
      flat(t.config.train)
    }`
    : "";
  const held = s.saes[0]?.heldoutTokens ?? NaN;
  const densityPlots = s.plots.filter((p) => p.name.includes("density"));
  return `<section id="summary">
<h2>Corpus</h2>
${
    table(
      [
        "source",
        "stands for",
        "target share",
        "achieved share",
        "rows",
        "characters",
      ],
      s.composition.map((c) => [
        esc(c.source),
        esc(c.standsFor),
        pct(c.targetShare),
        pct(c.achievedShare),
        int(c.rows),
        int(c.chars),
      ]),
      "num",
    )
  }
<h2>Transformer</h2>
${plot("transformer_loss")}
<table class="kv" id="transformer-summary"><tbody>
<tr><th>steps</th><td>${int(t.steps)}</td><th>tokens seen</th><td>${int(t.tokensSeen)}</td></tr>
<tr><th>final train loss</th><td>${num(t.finalTrainLoss)}</td><th>final val loss</th>
<td id="final-val-loss">${num(t.finalValLoss)}</td></tr>
<tr><th>unigram entropy (training tokens)</th><td id="unigram-entropy">${
    num(t.unigramEntropy)
  }</td><th>val loss − unigram entropy</th><td>${num(gap)} nats${
    gap === null ? "" : gap < 0 ? " (below: the model uses context)" : " (not below)"
  }</td></tr>
<tr><th>throughput</th><td>${int(t.tokensPerS)} tokens/s</td><th>backend</th><td>${
    esc(t.backend)
  }</td></tr>
</tbody></table>
${cfgText ? `<p class="note">Model: ${cfgText}</p>` : ""}
<h2>SAE sweep</h2>
${
    table(
      [
        "size",
        "architecture",
        "L0",
        "variance explained",
        "loss recovered",
        "dead fraction",
        "alive",
        "held-out tokens",
      ],
      s.saes.map((r) => [
        `<a href="#${esc(r.name)}">${esc(r.name)}</a>`,
        esc(r.architecture),
        num(r.l0, 2),
        num(r.fve),
        num(r.lossRecovered),
        num(r.deadFraction),
        int(r.alive),
        int(r.heldoutTokens),
      ]),
      "num",
    )
  }
<p class="note">Dead = no firing in ${int(held)} held-out tokens (density resolution ${
    num(1 / held)
  }); a feature rarer than that cannot be told from a dead one.</p>
${plot("sae_metrics")}
<h2>Feature density</h2>
<div class="plots">${densityPlots.map(figure).join("\n")}</div>
<h2>Scaling</h2>
${plot("scaling")}
${
    s.fits.length
      ? `<table class="num" id="fit"><thead><tr><th>architecture</th><th>init</th><th>statistic</th>
<th>slope</th>
<th>95% CI (Student t)</th><th>df</th><th>sizes / SAEs</th><th>R²</th><th>verdict</th></tr></thead>
<tbody>
${
        s.fits.map((f) =>
          `<tr data-fit="${esc(f.architecture)}/${esc(f.init)}/${esc(f.statistic)}"><td>${
            esc(f.architecture)
          }</td><td>${esc(f.init)}</td><td>${esc(f.statistic)}</td><td class="slope">${
            num(f.slope)
          }</td><td>[${num(f.ciLow)}, ${num(f.ciHigh)}]</td><td>${num(f.df, 0)}</td><td>${
            num(f.n, 0)
          } / ${num(f.saes, 0)}</td><td>${num(f.r2)}</td><td class="verdict">${
            esc(f.verdict)
          }</td></tr>`
        ).join("\n")
      }
</tbody></table>
<p class="note">Slopes are per log10 size: of log10 L0 (the paper: L0 stays roughly constant, so
slope 0), of the dead / ultra-low fraction (the paper: it grows), and, descriptively, of log10 of
the alive fraction and of the variance explained; one set per architecture and init. Each fit is ordinary least squares on the per-size means over replicate SAEs,
with a Student-t interval (df = sizes − 2).</p>`
      : `<p class="missing">No scaling fit.</p>`
  }
</section>`;
}

function browserHtml(m: PageManifest): string {
  const option = (s: PageManifest["saes"][number]) =>
    `<option value="${esc(s.key)}">${esc(s.key)} (${s.size.toLocaleString("en-US")} features${
      s.explained ? `, ${s.explained.toLocaleString("en-US")} explained` : ""
    })</option>`;
  // One architecture: a plain list of sizes; several: grouped by architecture, with a menu that
  // switches architecture at the current size.
  const archs = [...new Set(m.saes.map((s) => s.architecture))];
  const options = archs.length > 1
    ? archs.map((a) =>
      `<optgroup label="${esc(a)}">${
        m.saes.filter((s) => s.architecture === a).map(option).join("")
      }</optgroup>`
    ).join("")
    : m.saes.map(option).join("");
  const archMenu = archs.length > 1
    ? `<label>Architecture <select id="arch">${
      archs.map((a) => `<option value="${esc(a)}">${esc(a)}</option>`).join("")
    }</select></label>\n`
    : "";
  const input = (id: string, label: string, ph: string, size = 7) =>
    `<label>${label} <input id="${id}" type="text" size="${size}" placeholder="${ph}"></label>`;
  return `<section id="browser">
<h2>Feature browser</h2>
<div class="controls">
${archMenu}<label>SAE <select id="sae">${options}</select></label>
${input("f-id", "Feature", "12 or 10-20")}
${input("f-text", "Explanation has", "text", 14)}
${input("f-dmin", "Density ≥", "1e-4")}
${input("f-dmax", "≤", "1")}
${input("f-amin", "Max act ≥", "0")}
${input("f-smin", "Score ≥", "0")}
<label><input id="f-live" type="checkbox"> live only</label>
<label>Sort <select id="sort">
<option value="density">density</option><option value="max">max activation</option>
<option value="mean">mean activation</option><option value="score">autointerp score</option>
<option value="id">feature id</option></select></label>
<button id="sort-dir" type="button" title="Sort direction">↓</button>
<span id="fcount" data-count="0"></span>
</div>
<div class="fb">
<div class="flist-wrap">
<div class="fhead"><span data-sort="id">#</span><span data-sort="density">density</span>` +
    `<span data-sort="max">max</span><span data-sort="score">score</span><span>explanation</span></div>
<div id="flist" tabindex="0"><div id="flist-inner"></div></div>
</div>
<div id="detail"><p class="hint">Select a feature on the left, or open #f&lt;size&gt;/&lt;id&gt;.</p></div>
</div>
</section>`;
}

/** The whole index.html. */
export function renderPage(summary: RunSummary, manifest: PageManifest): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(summary.run)}: dictionary learning report</title>
<style>${REPORT_CSS}</style>
</head>
<body>
<header><h1>Run <code>${esc(summary.run)}</code></h1>
<nav><a href="#summary">Summary</a> · <a href="#browser">Feature browser</a></nav></header>
<main>
${summaryHtml(summary)}
${browserHtml(manifest)}
</main>
<script id="rtd-manifest" type="application/json">${jsonForHtml(manifest)}</script>
<script>${CLIENT_JS}</script>
</body>
</html>
`;
}
