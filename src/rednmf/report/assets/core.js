"use strict";
// Shared by the run report and the bench report: decoding, colours, the slider's quantile
// scale, detection statistics (pixels, 8-connected detections, P_D, P_F), sortable tables and
// small SVG plots.

function bytes(b64) {
  const s = atob(b64), out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
function floats(b64) { return new Float32Array(bytes(b64).buffer); }
// A map packed 8 pixels a byte, most significant bit first (numpy.packbits).
function bits(b64, n) {
  const packed = bytes(b64), out = new Uint8Array(n);
  for (let p = 0; p < n; p++) out[p] = (packed[p >> 3] >> (7 - (p & 7))) & 1;
  return out;
}

// matplotlib's magma, 9 stops; the overview picture uses the same map.
const MAGMA = [[0, 0, 4], [28, 16, 68], [79, 18, 123], [129, 37, 129], [181, 54, 122],
  [229, 80, 100], [251, 135, 97], [254, 194, 135], [252, 253, 191]];
function colour(t) {
  t = Math.min(1, Math.max(0, t)) * (MAGMA.length - 1);
  const i = Math.min(MAGMA.length - 2, Math.floor(t)), f = t - i;
  return MAGMA[i].map((c, k) => Math.round(c + f * (MAGMA[i + 1][k] - c)));
}
const NODATA = [180, 180, 180], DET = [255, 42, 42], TRUTH = [0, 229, 255], BOTH = [255, 230, 0];
// A colour as one little-endian RGBA word, for Uint32Array views of image data.
function word(c) { return ((255 << 24) | (c[2] << 16) | (c[1] << 8) | c[0]) >>> 0; }

// The slider (0..1000) moves over the score quantiles, log-spaced in the fraction above.
// shade(p) is the display value of pixel p: -log10 of the fraction of pixels scoring at least
// as high, over log10(M), as in the overview picture.
function scoreScale(scores) {
  const sorted = Float32Array.from(scores.filter(Number.isFinite)).sort();
  const M = sorted.length, logM = Math.log10(Math.max(M, 2));
  function toThreshold(v) {
    const frac = Math.pow(10, -(v / 1000) * Math.log10(M));  // fraction above, 1 .. 1/M
    const idx = Math.min(M - 1, Math.max(0, Math.floor(M * (1 - frac))));
    return v >= 1000 ? sorted[M - 1] : sorted[idx];
  }
  function toSlider(t) {
    let best = 0, gap = Infinity;
    for (let v = 0; v <= 1000; v++) {
      const g = Math.abs(toThreshold(v) - t);
      if (g < gap) { gap = g; best = v; }
    }
    return best;
  }
  function atLeast(s) {  // the number of scores >= s
    let lo = 0, hi = M;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (sorted[mid] < s) lo = mid + 1; else hi = mid; }
    return M - lo;
  }
  function shade(s) { return -Math.log10(atLeast(s) / M) / logM; }
  return {M: M, logM: logM, toThreshold: toThreshold, toSlider: toSlider, shade: shade};
}

// 8-connected components of `mask` (seeded from the flagged pixels `idx`), in place: a
// component smaller than minArea or with a pixel in the outer `border` rows or columns is
// cleared (as rednmf.io.detections.keep_detections). Returns the number kept and the kept
// pixels.
let LABELS = new Int32Array(0);
function components(mask, R, C, minArea, border, idx) {
  minArea = minArea || 1; border = border || 0;
  const N = R * C;
  if (LABELS.length !== N) LABELS = new Int32Array(N); else LABELS.fill(0);
  const lab = LABELS, stack = [], members = [], kept = [];
  let count = 0, n = 0;
  for (const p of idx) {
    if (!mask[p] || lab[p]) continue;
    n++; lab[p] = n; stack.push(p); members.length = 0;
    let edge = false;
    while (stack.length) {
      const q = stack.pop(), r = (q / C) | 0, c = q - r * C;
      members.push(q);
      if (r < border || c < border || r >= R - border || c >= C - border) edge = true;
      for (let dr = -1; dr <= 1; dr++) for (let dc = -1; dc <= 1; dc++) {
        const rr = r + dr, cc = c + dc;
        if (rr < 0 || cc < 0 || rr >= R || cc >= C) continue;
        const k = rr * C + cc;
        if (mask[k] && !lab[k]) { lab[k] = n; stack.push(k); }
      }
    }
    if (members.length < minArea || (border > 0 && edge)) {
      for (const q of members) mask[q] = 0;
    } else { count++; for (const q of members) kept.push(q); }
  }
  return {count: count, pixels: kept};
}
// Flag the pixels above the threshold into `detected`; return their indices.
function flag(scores, threshold, detected) {
  const idx = [];
  for (let p = 0; p < scores.length; p++) {
    if (scores[p] > threshold) { detected[p] = 1; idx.push(p); } else detected[p] = 0;  // NaN: 0
  }
  return idx;
}
// The pixels with data among the truth's anomalies and its background (once per map).
function truthTotals(scores, gt) {
  let nt = 0, nb = 0;
  if (gt) for (let p = 0; p < scores.length; p++) if (Number.isFinite(scores[p])) { if (gt[p]) nt++; else nb++; }
  return {nt: nt, nb: nb};
}
// The detected pixels (all with data) and, with truth, P_D and P_F.
function tally(pixels, gt, totals) {
  let tp = 0;
  if (gt) for (const p of pixels) tp += gt[p];
  const fp = pixels.length - tp;
  return {pixels: pixels.length, pd: totals.nt ? tp / totals.nt : 0, pf: totals.nb ? fp / totals.nb : 0};
}
// Write the threshold and the statistics into the elements el.thr, count, pixels, pd, pf.
function showStats(el, threshold, st, count, hasGt) {
  el.thr.textContent = threshold.toPrecision(5);
  el.thr.dataset.value = String(threshold);  // exact, for scripts and tests
  el.count.textContent = "detections: " + count;
  el.pixels.textContent = "pixels: " + st.pixels;
  el.pd.textContent = hasGt ? "P_D: " + st.pd.toFixed(4) : "";
  el.pf.textContent = hasGt ? "P_F: " + st.pf.toFixed(6) : "";
}

// Tables whose header cells sort them: numbers by value (the first number of a cell such as
// "0.9512 (0.9600, -0.0088)"), text otherwise; a second click reverses.
function cellKey(td) {
  const t = td.dataset.sort !== undefined ? td.dataset.sort : td.textContent;
  const m = t.match(/^\s*[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?/i);
  return m ? parseFloat(m[0]) : t.trim().toLowerCase();
}
function sortBy(table, col, asc) {
  const body = table.tBodies[0], rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = cellKey(a.cells[col]), y = cellKey(b.cells[col]);
    const nx = typeof x === "number", ny = typeof y === "number";
    let d = nx && ny ? x - y : nx ? -1 : ny ? 1 : String(x).localeCompare(String(y));
    if (!(nx && ny) && (nx || ny)) return d;  // text ("-") after numbers either way
    return asc ? d : -d;
  });
  for (const r of rows) body.appendChild(r);
  for (const th of table.tHead.rows[0].cells) th.removeAttribute("aria-sort");
  table.tHead.rows[0].cells[col].setAttribute("aria-sort", asc ? "ascending" : "descending");
}
function sortable(table) {
  if (!table.tHead || !table.tBodies.length) return;
  Array.from(table.tHead.rows[0].cells).forEach((th, col) => {
    th.classList.add("sortable");
    th.title = "click to sort";
    th.addEventListener("click", () => sortBy(table, col, th.getAttribute("aria-sort") !== "ascending"));
  });
}

// Round tick values covering [lo, hi], about n of them.
function niceTicks(lo, hi, n) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, n), mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}
// An SVG plot: axes with ticks and labels, then the given series. `series` items are
// {x: [...], y: [...], colour, width, id, band: {lo: [...], hi: [...]}} (band: a filled area).
function svgPlot(svg, series, opts) {
  const W = opts.width, H = opts.height, L = 58, Rm = 12, T = 22, B = 42;
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const s of series) {
    for (let i = 0; i < s.x.length; i++) {
      x0 = Math.min(x0, s.x[i]); x1 = Math.max(x1, s.x[i]);
      const lo = s.band ? s.band.lo[i] : s.y[i], hi = s.band ? s.band.hi[i] : s.y[i];
      if (Number.isFinite(lo)) y0 = Math.min(y0, lo);
      if (Number.isFinite(hi)) y1 = Math.max(y1, hi);
    }
  }
  if (opts.xRange) [x0, x1] = opts.xRange;
  if (opts.yRange) [y0, y1] = opts.yRange;
  if (!(x1 > x0)) x1 = x0 + 1;
  if (!(y1 > y0)) y1 = y0 + 1;
  const X = (v) => (L + (W - L - Rm) * (v - x0) / (x1 - x0)).toFixed(1);
  const Y = (v) => (H - B - (H - T - B) * (v - y0) / (y1 - y0)).toFixed(1);
  const parts = [`<rect x="${L}" y="${T}" width="${W - L - Rm}" height="${H - T - B}" fill="none" stroke="#bbb"/>`];
  for (const v of niceTicks(x0, x1, 6)) {
    parts.push(`<line class="xtick" x1="${X(v)}" x2="${X(v)}" y1="${H - B}" y2="${H - B + 4}" stroke="#444"/>` +
      `<text x="${X(v)}" y="${H - B + 16}" font-size="11" text-anchor="middle">${opts.xFormat ? opts.xFormat(v) : v}</text>`);
  }
  for (const v of niceTicks(y0, y1, 5)) {
    parts.push(`<line x1="${L - 4}" x2="${L}" y1="${Y(v)}" y2="${Y(v)}" stroke="#444"/>` +
      `<text x="${L - 6}" y="${+Y(v) + 4}" font-size="11" text-anchor="end">${+v.toPrecision(4)}</text>`);
  }
  parts.push(`<text id="${opts.id}-xlabel" x="${(W + L) / 2}" y="${H - 6}" font-size="12" text-anchor="middle">${opts.xLabel}</text>`);
  parts.push(`<text x="12" y="${(H - B + T) / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 12 ${(H - B + T) / 2})">${opts.yLabel}</text>`);
  if (opts.title) parts.push(`<text x="${L}" y="14" font-size="12">${opts.title}</text>`);
  (opts.legend || []).forEach((s, i) => {
    const y = T + 16 + 15 * i, x = opts.legendX || L + 8;
    parts.push(`<line x1="${x}" x2="${x + 18}" y1="${y - 4}" y2="${y - 4}" stroke="${s.colour}" stroke-width="2.5"/>` +
      `<text x="${x + 24}" y="${y}" font-size="11">${s.label}</text>`);
  });
  for (const s of series) {
    const pts = (ys) => s.x.map((x, i) => X(x) + "," + Y(ys[i])).join(" ");
    if (s.band) {
      const back = s.x.map((x, i) => X(x) + "," + Y(s.band.lo[i])).reverse().join(" ");
      parts.push(`<polygon id="${s.id}" points="${pts(s.band.hi)} ${back}" fill="${s.colour}" opacity="0.35"/>`);
    } else {
      parts.push(`<polyline id="${s.id}" points="${pts(s.y)}" fill="none" stroke="${s.colour}" stroke-width="${s.width || 1.5}"/>`);
    }
  }
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.innerHTML = parts.join("");
}
