/**
 * The report's CSS, inline in index.html. The font stack falls back through Latin, Arabic and
 * Japanese faces common on Linux, macOS and Windows, so every script of the corpus finds glyphs.
 *
 * @module
 */

export const REPORT_CSS = `
:root {
  --fg: #1d1d1f; --muted: #666; --line: #ddd; --accent: #1f5fbf; --row: 24px;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans",
    "Helvetica Neue", Arial, "Noto Sans Arabic", "Noto Naskh Arabic", "Geeza Pro", Tahoma,
    "Noto Sans CJK JP", "Noto Sans JP", "Hiragino Sans", "Hiragino Kaku Gothic ProN",
    "Yu Gothic", Meiryo, "Source Han Sans", sans-serif;
  color: var(--fg);
}
body { margin: 0 auto; max-width: 1400px; padding: 0 16px 48px; }
header { display: flex; align-items: baseline; gap: 24px; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; } h3 { font-size: 1em; }
a { color: var(--accent); }
table { border-collapse: collapse; margin: 8px 0; font-size: 0.9em; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 8px; text-align: left; }
table.num td { font-variant-numeric: tabular-nums; }
table.kv th { font-weight: normal; color: var(--muted); }
.note { color: var(--muted); font-size: 0.85em; }
.missing { color: #b00; }
figure.plot { margin: 12px 0; overflow-x: auto; }
figure.plot svg { max-width: 100%; height: auto; display: block; }
.plots { display: flex; flex-wrap: wrap; gap: 0 24px; align-items: flex-start; }
figcaption { color: var(--muted); font-size: 0.85em; }
.controls { display: flex; flex-wrap: wrap; gap: 6px 14px; align-items: center; font-size: 0.9em;
  padding: 8px 0; position: sticky; top: 0; background: #fff; z-index: 2; }
.controls input[type=text] { font: inherit; }
#fcount { color: var(--muted); }
.fb { display: grid; grid-template-columns: minmax(320px, 440px) 1fr; gap: 16px; }
.flist-wrap { border: 1px solid var(--line); }
.fhead, .frow { display: grid; grid-template-columns: 56px 72px 56px 48px 1fr; gap: 4px;
  align-items: center; padding: 0 6px; font-size: 0.82em; }
.fhead { border-bottom: 1px solid var(--line); height: var(--row); color: var(--muted); }
.fhead span[data-sort] { cursor: pointer; text-decoration: underline dotted; }
#flist { height: 70vh; overflow-y: auto; position: relative; outline: none; }
#flist-inner { position: relative; }
.frow { position: absolute; left: 0; right: 0; height: var(--row); cursor: pointer;
  white-space: nowrap; font-variant-numeric: tabular-nums; }
.frow:hover { background: #f2f6fc; } .frow.sel { background: #dde8f8; }
.frow .ex-text { overflow: hidden; text-overflow: ellipsis; }
.frow.dead { color: #aaa; }
#detail { min-width: 0; }
#detail .stats td, #detail .stats th { font-size: 0.9em; }
.explanation { font-size: 1.05em; margin: 8px 0; }
.scores span { margin-right: 14px; }
.logits { display: flex; gap: 24px; flex-wrap: wrap; }
.logits table td.w { text-align: right; font-variant-numeric: tabular-nums; }
.logits caption { text-align: left; font-weight: 600; }
.tok, .t { white-space: pre; }
.exgroup h3 { margin: 14px 0 4px; font-weight: 600; }
.ex { line-height: 1.9; padding: 1px 4px; border-bottom: 1px solid #f0f0f0; font-size: 0.92em;
  unicode-bidi: isolate; white-space: pre-wrap; overflow-wrap: anywhere; }
.exrow { display: flex; align-items: baseline; gap: 8px; border-bottom: 1px solid #f0f0f0; }
.exrow .act { flex: 0 0 4.5em; text-align: right; color: var(--muted); font-size: 0.8em;
  font-variant-numeric: tabular-nums; }
.exrow .ex { flex: 1 1 auto; min-width: 0; border-bottom: none; }
.t { border-radius: 2px; }
.t.c { outline: 1px solid #333; }
.t.frag { display: inline-block; min-width: 2px; }
.t.ws, .tok.ws, .eot { color: #999; }
.steer td { vertical-align: top; white-space: pre-wrap; }
.hint { color: var(--muted); }
.err { color: #b00; }
`;
