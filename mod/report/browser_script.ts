/**
 * The feature browser's script, inline in index.html (plain ES2017, no libraries, no network).
 *
 * - Data: data/f<N>.js (the SAE's index) and data/f<N>-<k>.js (shard k: examples and logits) are
 *   classic scripts that call RTD.add(key, payload); they are inserted when first needed, which
 *   works from file:// where fetch() of a local file does not.
 * - The feature list is virtualised: only the rows in view (plus a margin) exist in the DOM, so
 *   16,384 features filter, sort and scroll at the cost of a few dozen rows.
 * - Deep links: #f<N> opens an SAE, #f<N>/<id> a feature; selecting a feature updates the hash.
 *   Other architectures' SAEs have their folder names as keys (#f<N>-topk-independent-r0/<id>).
 * - With several architectures an Architecture menu switches between them at the same size.
 * - Token texts go into the page escaped; whitespace shows as ↵ ⇥ ·. Each example line is its
 *   own bidi paragraph (dir="auto": an Arabic line runs right to left, a Latin one left to right)
 *   and the token spans inside it carry no dir: the HTML spec's dir="auto" skips descendants with
 *   their own dir, so isolating every token would leave every line left-to-right, and isolates
 *   also break Arabic letter joining across tokens. The line is then laid out as the real text.
 *
 * Written without template literals so that it can live in this TypeScript string.
 *
 * @module
 */

export const CLIENT_JS = String.raw`
(function () {
  "use strict";
  var M = JSON.parse(document.getElementById("rtd-manifest").textContent);
  var ROW = 24;
  var KINDS = ["top", "quantile", "random"];
  var store = {}, waiting = {};
  var S = { key: null, idx: null, feature: null, view: [], sort: "density", dir: -1, ticket: 0 };
  function $(id) { return document.getElementById(id); }

  function load(key, src) {
    if (store[key]) return Promise.resolve(store[key]);
    if (waiting[key]) return waiting[key].promise;
    var w = {};
    w.promise = new Promise(function (res, rej) { w.resolve = res; w.reject = rej; });
    waiting[key] = w;
    var el = document.createElement("script");
    el.src = src;
    el.onload = function () {
      if (waiting[key] === w) { delete waiting[key]; w.reject(new Error(src + " did not define " + key)); }
    };
    el.onerror = function () { delete waiting[key]; w.reject(new Error("Cannot load " + src)); };
    document.head.appendChild(el);
    return w.promise;
  }

  var ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" };
  function esc(s) { return String(s).replace(/[&<>"']/g, function (c) { return ESC[c]; }); }
  function fmt(x) {
    if (x === null || x === undefined || x !== x) return "–";
    if (x === 0) return "0";
    var a = Math.abs(x);
    if (a < 1e-3 || a >= 1e5) return x.toExponential(2);
    return String(Number(x.toPrecision(3)));
  }

  /** How a token string shows: whitespace made visible, the end-of-text token named. */
  function tokView(s) {
    if (s === "<|endoftext|>") return { text: "⟨EOT⟩", cls: "eot" };
    if (s === "") return { text: "", cls: "frag" };
    var t = s.replace(/\r\n|\n|\r/g, "↵").replace(/\t/g, "⇥");
    if (/^[ \u00a0]+$/.test(t)) return { text: t.replace(/[ \u00a0]/g, "·"), cls: "ws" };
    return { text: t, cls: /^[↵⇥]+$/.test(t) ? "ws" : "" };
  }

  /** One example line: a span per token, shaded by act / max, the value in data-act and title. */
  function exampleHtml(strings, acts, max, centre, attrs) {
    var out = [];
    for (var i = 0; i < strings.length; i++) {
      var v = tokView(strings[i]), a = acts ? acts[i] : 0;
      var alpha = max > 0 ? Math.max(0, Math.min(1, a / max)) : 0;
      var cls = "t" + (v.cls ? " " + v.cls : "") + (i === centre ? " c" : "");
      out.push("<span class=\"" + cls + "\" data-act=\"" + a + "\" title=\"" +
        esc("activation " + fmt(a) + (v.cls === "frag" ? " (first bytes of the next character)" : "")) +
        "\"" + (alpha > 0 ? " style=\"background-color:rgba(255,120,0," + alpha.toFixed(3) + ")\"" : "") +
        ">" + esc(v.text) + "</span>");
    }
    return "<div class=\"ex\" dir=\"auto\"" + (attrs || "") + ">" + out.join("") + "</div>";
  }

  function prep(I) {
    var n = I.size;
    I.sim = new Float64Array(n).fill(NaN);
    I.explRow = new Int32Array(n).fill(-1);
    I.explLower = new Array(n);
    I.steerBy = {};
    if (I.expl) {
      for (var r = 0; r < I.expl.f.length; r++) {
        var f = I.expl.f[r];
        if (f < 0 || f >= n) continue;
        I.explRow[f] = r;
        if (I.expl.sim[r] !== null) I.sim[f] = I.expl.sim[r];
        if (I.expl.text[r] !== null) I.explLower[f] = I.expl.text[r].toLowerCase();
      }
    }
    I.steer.forEach(function (s) { (I.steerBy[s.f] = I.steerBy[s.f] || []).push(s); });
  }

  function numInput(id) {
    var el = $(id), v = el.value.trim();
    el.classList.remove("err");
    if (v === "") return null;
    var x = Number(v);
    if (x !== x) { el.classList.add("err"); return null; }
    return x;
  }

  function idRange() {
    var el = $("f-id"), v = el.value.trim(), m = /^(\d+)\s*(?:-\s*(\d+))?$/.exec(v);
    el.classList.remove("err");
    if (v === "") return null;
    if (!m) { el.classList.add("err"); return null; }
    return [Number(m[1]), m[2] === undefined ? Number(m[1]) : Number(m[2])];
  }

  function sortArray(I) {
    return S.sort === "density" ? I.density : S.sort === "max" ? I.maxAct :
      S.sort === "mean" ? I.meanAct : S.sort === "score" ? I.sim : null;
  }

  function computeView() {
    var I = S.idx, out = [];
    var ids = idRange(), text = $("f-text").value.trim().toLowerCase();
    var dmin = numInput("f-dmin"), dmax = numInput("f-dmax"), amin = numInput("f-amin");
    var smin = numInput("f-smin"), live = $("f-live").checked;
    for (var f = 0; f < I.size; f++) {
      if (ids && (f < ids[0] || f > ids[1])) continue;
      if (live && !(I.count[f] > 0)) continue;
      if (dmin !== null && !(I.density[f] >= dmin)) continue;
      if (dmax !== null && !(I.density[f] <= dmax)) continue;
      if (amin !== null && !(I.maxAct[f] >= amin)) continue;
      if (smin !== null && !(I.sim[f] >= smin)) continue;
      if (text && !(I.explLower[f] && I.explLower[f].indexOf(text) >= 0)) continue;
      out.push(f);
    }
    var arr = sortArray(I), dir = S.dir;
    out.sort(function (a, b) {
      if (!arr) return (a - b) * dir;
      var x = arr[a], y = arr[b], xn = x === null || x !== x, yn = y === null || y !== y;
      if (xn || yn) return xn === yn ? a - b : xn ? 1 : -1;
      return x === y ? a - b : (x < y ? -1 : 1) * dir;
    });
    S.view = out;
  }

  function renderList() {
    var I = S.idx, box = $("flist"), inner = $("flist-inner");
    if (!I) return;
    inner.style.height = (S.view.length * ROW) + "px";
    var h = box.clientHeight || 600;
    var a = Math.max(0, Math.floor(box.scrollTop / ROW) - 10);
    var b = Math.min(S.view.length, Math.ceil((box.scrollTop + h) / ROW) + 10);
    var html = [];
    for (var i = a; i < b; i++) {
      var f = S.view[i], r = I.explRow[f];
      var text = r >= 0 ? (I.expl.text[r] || (I.expl.err[r] ? "(error)" : "")) : "";
      html.push("<div class=\"frow" + (f === S.feature ? " sel" : "") + (I.count[f] > 0 ? "" : " dead") +
        "\" data-f=\"" + f + "\" style=\"top:" + (i * ROW) + "px\"><span>" + f +
        (I.steerBy[f] ? " ⇢" : "") + "</span><span>" + fmt(I.density[f]) + "</span><span>" +
        fmt(I.maxAct[f]) + "</span><span>" + (I.sim[f] === I.sim[f] ? fmt(I.sim[f]) : "") +
        "</span><span class=\"ex-text\" dir=\"auto\">" + esc(text) + "</span></div>");
    }
    inner.innerHTML = html.join("");
    var c = $("fcount");
    c.textContent = S.view.length.toLocaleString("en-US") + " of " + I.size.toLocaleString("en-US") +
      " features";
    c.setAttribute("data-count", String(S.view.length));
  }

  function refresh() {
    computeView();
    $("flist").scrollTop = 0;
    renderList();
  }

  function setHash(h) {
    if (location.hash === h) return;
    try { history.replaceState(null, "", h); } catch (e) { location.hash = h; }
  }

  function logitTable(title, cls, ids, ws, tokens) {
    var rows = ids.map(function (t, i) {
      var v = tokView(tokens[t]);
      return "<tr class=\"lg " + cls + "\" data-token=\"" + esc(tokens[t]) + "\" data-weight=\"" +
        ws[i] + "\"><td class=\"tok" + (v.cls ? " " + v.cls : "") + "\" dir=\"auto\">" +
        esc(v.text) + "</td><td class=\"w\">" + fmt(ws[i]) + "</td></tr>";
    });
    return "<table><caption>" + title + "</caption><tbody>" + rows.join("") + "</tbody></table>";
  }

  function groupTitle(kind, q, bins) {
    if (kind === 0) return "Top activations";
    if (kind === 2) return "Random contexts (feature silent)";
    var hi = bins > 0 ? Math.min(1, q + 1 / bins) : 1;
    return "Activations in [" + fmt(q) + ", " + fmt(hi) + ") × max";
  }

  function examplesHtml(I, f, rows) {
    if (!rows.length) return "<p class=\"hint\">No examples (the feature never fired on the held-out tokens, and no silent contexts were kept).</p>";
    var groups = [], byKey = {};
    rows.forEach(function (e) {
      var k = e[0] + ":" + e[2];
      if (!byKey[k]) { byKey[k] = { kind: e[0], q: e[2], rows: [] }; groups.push(byKey[k]); }
      byKey[k].rows.push(e);
    });
    groups.sort(function (a, b) { return a.kind - b.kind || b.q - a.q; });
    return groups.map(function (g) {
      var lines = g.rows.map(function (e) {
        var strings = e[5].map(function (t) { return I.tokens[t]; });
        return "<div class=\"exrow\"><span class=\"act\">" + fmt(e[4]) + "</span>" +
          exampleHtml(strings, e[6] || null, I.maxAct[f], e[3],
            " data-kind=\"" + KINDS[e[0]] + "\" data-rank=\"" + e[1] + "\"") + "</div>";
      });
      return "<div class=\"exgroup\" data-kind=\"" + KINDS[g.kind] + "\"><h3>" +
        groupTitle(g.kind, g.q, I.bins) + "</h3>" + lines.join("") + "</div>";
    }).join("");
  }

  function steerHtml(I, f) {
    var rows = I.steerBy[f];
    if (!rows) return "";
    return "<h3>Steering</h3><table class=\"steer\"><thead><tr><th>prompt</th><th>scale (× max)</th>" +
      "<th>unsteered</th><th>steered</th></tr></thead><tbody>" + rows.map(function (s) {
        return "<tr><td dir=\"auto\">" + esc(s.prompt) + "</td><td>" + fmt(s.scale) + " (" +
          fmt(s.raw) + ")</td><td dir=\"auto\">" + esc(s.plain) + "</td><td dir=\"auto\">" +
          esc(s.steered) + "</td></tr>";
      }).join("") + "</tbody></table>";
  }

  function headHtml(I, f) {
    var r = I.explRow[f], x = I.expl, html = "<h3 id=\"fhead\">" + esc(S.key) + " / feature " + f +
      " <a href=\"#" + esc(S.key) + "/" + f + "\" title=\"Link to this feature\">#</a></h3>" +
      "<table class=\"kv stats\"><tbody><tr><th>density</th><td id=\"d-density\">" + fmt(I.density[f]) +
      " (" + I.count[f].toLocaleString("en-US") + " of " + I.heldout.toLocaleString("en-US") +
      " held-out tokens)</td></tr><tr><th>max activation</th><td id=\"d-max\">" + fmt(I.maxAct[f]) +
      "</td></tr><tr><th>mean activation (when firing)</th><td>" + fmt(I.meanAct[f]) + "</td></tr></tbody></table>";
    if (r >= 0) {
      html += "<div class=\"explanation\" dir=\"auto\" id=\"d-expl\">" +
        (x.text[r] === null ? "<span class=\"hint\">(no explanation)</span>" : esc(x.text[r])) + "</div>" +
        "<div class=\"scores\"><span>simulation score <b id=\"d-sim\">" + fmt(x.sim[r]) +
        "</b></span><span>detection F1 <b>" + fmt(x.det[r]) + "</b></span><span>fuzzing F1 <b>" +
        fmt(x.fuzz[r]) + "</b></span><span class=\"note\">" + esc(x.models[x.em[r]]) + " / " +
        esc(x.models[x.sm[r]]) + "</span></div>" +
        (x.err[r] ? "<p class=\"err\">Autointerp error: " + esc(x.err[r]) + "</p>" : "");
    } else if (x) {
      html += "<p class=\"hint\">Not explained by the autointerp run.</p>";
    }
    return html;
  }

  function renderDetail(f) {
    var I = S.idx, key = S.key, k = Math.floor(f / I.shardSize), d = $("detail");
    var ticket = ++S.ticket;
    d.setAttribute("data-feature", String(f));
    d.setAttribute("data-loaded", "0");
    d.innerHTML = headHtml(I, f) + "<p class=\"hint\">Loading examples…</p>";
    load(key + "/" + k, "data/" + key + "-" + k + ".js").then(function (sh) {
      if (ticket !== S.ticket) return;
      var j = f - sh.first, l = sh.l[j];
      d.innerHTML = headHtml(I, f) + "<div class=\"logits\">" +
        logitTable("Positive logits", "lg-pos", l[0], l[1], I.tokens) +
        logitTable("Negative logits", "lg-neg", l[2], l[3], I.tokens) + "</div>" +
        steerHtml(I, f) + "<h3>Examples</h3>" + examplesHtml(I, f, sh.e[j]);
      d.setAttribute("data-loaded", "1");
    }).catch(function (e) {
      if (ticket === S.ticket) d.innerHTML += "<p class=\"err\">" + esc(e.message) + "</p>";
    });
  }

  function select(f, scroll) {
    S.feature = f;
    setHash("#" + S.key + "/" + f);
    var i = S.view.indexOf(f), box = $("flist");
    if (scroll && i >= 0) {
      var top = i * ROW;
      if (top < box.scrollTop || top > box.scrollTop + box.clientHeight - ROW) {
        box.scrollTop = Math.max(0, top - box.clientHeight / 2);
      }
    }
    renderList();
    renderDetail(f);
  }

  function openSae(key) {
    S.key = key;
    S.feature = null;
    $("sae").value = key;
    var meta = M.saes.filter(function (s) { return s.key === key; })[0];
    if ($("arch") && meta) $("arch").value = meta.architecture;
    $("fcount").textContent = "loading " + key + "…";
    return load(key, "data/" + key + ".js").then(function (I) {
      if (S.key !== key) return false;
      if (!I.sim) prep(I);
      S.idx = I;
      refresh();
      $("detail").innerHTML = "<p class=\"hint\">Select a feature.</p>";
      $("detail").removeAttribute("data-feature");
      document.body.setAttribute("data-sae", key);
      return true;
    });
  }

  function parseHash() {
    var m = /^#(f\d+(?:-[a-z0-9]+)*)(?:\/(\d+))?$/.exec(location.hash);
    return m ? { key: m[1], f: m[2] === undefined ? null : Number(m[2]) } : null;
  }

  function go(h) {
    if (!M.saes.some(function (s) { return s.key === h.key; })) return;
    var same = S.key === h.key && S.idx && S.idx.key === h.key;
    (same ? Promise.resolve(true) : openSae(h.key)).then(function (ok) {
      if (!ok) return;
      if (h.f !== null && h.f < S.idx.size) select(h.f, true);
      else setHash("#" + h.key);
      $("browser").scrollIntoView();
    }).catch(fail);
  }

  function fail(e) {
    $("fcount").textContent = e.message;
    $("fcount").classList.add("err");
  }

  $("sae").addEventListener("change", function () {
    openSae($("sae").value).then(function () { setHash("#" + S.key); }).catch(fail);
  });
  // The same size in another architecture (else that architecture's first SAE).
  if ($("arch")) $("arch").addEventListener("change", function () {
    var a = $("arch").value, cur = M.saes.filter(function (s) { return s.key === S.key; })[0];
    var mine = M.saes.filter(function (s) { return s.architecture === a; });
    var to = mine.filter(function (s) { return cur && s.size === cur.size; })[0] || mine[0];
    if (to) openSae(to.key).then(function () { setHash("#" + S.key); }).catch(fail);
  });
  ["f-id", "f-text", "f-dmin", "f-dmax", "f-amin", "f-smin", "f-live"].forEach(function (id) {
    $(id).addEventListener(id === "f-live" ? "change" : "input", function () { if (S.idx) refresh(); });
  });
  function setSort(key, dir) {
    S.sort = key;
    S.dir = dir;
    $("sort").value = key;
    $("sort-dir").textContent = dir < 0 ? "↓" : "↑";
    if (S.idx) refresh();
  }
  $("sort").addEventListener("change", function () { setSort($("sort").value, $("sort").value === "id" ? 1 : -1); });
  $("sort-dir").addEventListener("click", function () { setSort(S.sort, -S.dir); });
  document.querySelectorAll(".fhead [data-sort]").forEach(function (el) {
    el.addEventListener("click", function () {
      var k = el.getAttribute("data-sort");
      setSort(k, k === S.sort ? -S.dir : k === "id" ? 1 : -1);
    });
  });
  var pendingFrame = 0;
  $("flist").addEventListener("scroll", function () {
    if (!pendingFrame) pendingFrame = requestAnimationFrame(function () { pendingFrame = 0; renderList(); });
  });
  $("flist-inner").addEventListener("click", function (ev) {
    var row = ev.target.closest(".frow");
    if (row) select(Number(row.getAttribute("data-f")), false);
  });
  $("flist").addEventListener("keydown", function (ev) {
    if (ev.key !== "ArrowDown" && ev.key !== "ArrowUp") return;
    var i = S.view.indexOf(S.feature) + (ev.key === "ArrowDown" ? 1 : -1);
    if (i >= 0 && i < S.view.length) select(S.view[i], true);
    ev.preventDefault();
  });
  window.addEventListener("hashchange", function () {
    var h = parseHash();
    if (h && !(h.key === S.key && h.f === S.feature)) go(h);
  });

  window.RTD = {
    add: function (key, data) {
      store[key] = data;
      var w = waiting[key];
      if (w) { delete waiting[key]; w.resolve(data); }
    },
    exampleHtml: exampleHtml,
    state: S,
  };
  var h0 = parseHash();
  if (h0 && M.saes.some(function (s) { return s.key === h0.key; })) go(h0);
  else if (M.saes.length) openSae(M.saes[0].key).catch(fail);
})();
`;
