// The run report: map with zoom and pan, layers, threshold slider, detections table, spectra.
const D = JSON.parse(document.getElementById("data").textContent);
const R = D.rows, C = D.cols, N = R * C, B = D.bands;
const scores = floats(D.scores);
const gt = D.gt ? bits(D.gt, N) : null;
const scale = scoreScale(scores);
const $ = (id) => document.getElementById(id);
const EL = {thr: $("thr"), count: $("count"), pixels: $("pixels"), pd: $("pd"), pf: $("pf")};

// ---- detections at the current threshold: the run's own map first -------------------------
let threshold = D.threshold;
const detected = bits(D.runMask, N);
const totals = truthTotals(scores, gt);
const gtPixels = [];
if (gt) for (let p = 0; p < N; p++) if (gt[p]) gtPixels.push(p);
let nAbove = 0, found = null;
function detectNow(idx) {
  nAbove = idx.length;
  found = components(detected, R, C, D.minArea, D.excludeBorder, idx);
}
detectNow(Array.from(detected.keys()).filter((p) => detected[p]));
const slider = $("slider");
slider.value = scale.toSlider(D.threshold);
function refreshStats() {
  showStats(EL, threshold, tally(found.pixels, gt, totals), found.count, !!gt);
  const mark = $("thr-mark");
  if (mark) mark.style.left = (100 * -Math.log10(Math.max(1, nAbove) / scale.M) / scale.logM) + "%";
}
slider.addEventListener("input", () => {
  threshold = scale.toThreshold(Number(slider.value));
  detectNow(flag(scores, threshold, detected));
  refreshStats();
  compose();
});

// ---- layers, composed at the scene's resolution into an offscreen canvas --------------------
const off = document.createElement("canvas");
off.width = C; off.height = R;
const octx = off.getContext("2d", {willReadFrequently: true});
const layer = octx.createImageData(C, R);
let rgbBase = null, scoreBase = null;
function makeScoreBase() {
  const lut = Array.from({length: 256}, (_, i) => colour(i / 255));
  const out = new Uint8ClampedArray(4 * N);
  for (let p = 0; p < N; p++) {
    const s = scores[p], c = Number.isFinite(s) ? lut[Math.round(255 * scale.shade(s))] : NODATA;
    out[4 * p] = c[0]; out[4 * p + 1] = c[1]; out[4 * p + 2] = c[2]; out[4 * p + 3] = 255;
  }
  return out;
}
function makeRgbBase() {
  const img = $("rgb");
  octx.drawImage(img, 0, 0);
  const out = new Uint8ClampedArray(octx.getImageData(0, 0, C, R).data);
  for (let p = 0; p < N; p++) {
    if (!Number.isFinite(scores[p])) { out[4 * p] = NODATA[0]; out[4 * p + 1] = NODATA[1]; out[4 * p + 2] = NODATA[2]; }
    out[4 * p + 3] = 255;
  }
  return out;
}
function compose() {
  const useScores = $("layer-scores").checked;
  if (useScores && !scoreBase) scoreBase = makeScoreBase();
  if (!useScores && !rgbBase) {
    const img = $("rgb");
    if (!(img.complete && img.naturalWidth)) return;
    rgbBase = makeRgbBase();
  }
  const out = new Uint32Array(layer.data.buffer);
  out.set(new Uint32Array((useScores ? scoreBase : rgbBase).buffer));
  const showDet = $("layer-det").checked, showGt = gt && $("layer-gt").checked;
  if (showGt) for (const p of gtPixels) out[p] = showDet && detected[p] ? W_BOTH : W_TRUTH;
  if (showDet) for (const p of found.pixels) out[p] = showGt && gt[p] ? W_BOTH : W_DET;
  octx.putImageData(layer, 0, 0);
  render();
}
const W_DET = word(DET), W_TRUTH = word(TRUTH), W_BOTH = word(BOTH);
for (const id of ["layer-rgb", "layer-scores", "layer-det", "layer-gt"]) $(id).addEventListener("change", compose);
if (!gt) $("layer-gt").disabled = true;

// ---- the view: zoom and pan ------------------------------------------------------------------
const canvas = $("map"), ctx = canvas.getContext("2d");
const view = {s: 1, x: 0, y: 0, fit: 1};
let selected = null;  // the detection picked in the table
function resize() {
  canvas.width = Math.max(1, canvas.clientWidth);
  canvas.height = Math.max(1, canvas.clientHeight);
}
function fitView() {
  resize();
  view.fit = Math.min(canvas.width / C, canvas.height / R);
  view.s = view.fit;
  view.x = (canvas.width - view.s * C) / 2;
  view.y = (canvas.height - view.s * R) / 2;
  render();
}
function render() {
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.imageSmoothingEnabled = false;
  ctx.setTransform(view.s, 0, 0, view.s, view.x, view.y);
  ctx.drawImage(off, 0, 0);
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  if (selected) {
    const cx = view.x + view.s * (selected.col + 0.5), cy = view.y + view.s * (selected.row + 0.5);
    const rad = Math.max(10, view.s * Math.sqrt(selected.area_px / Math.PI) + 8);
    for (const [w, c] of [[5, "#000"], [2.5, "rgb(255,42,42)"]]) {
      ctx.beginPath(); ctx.arc(cx, cy, rad, 0, 2 * Math.PI); ctx.lineWidth = w; ctx.strokeStyle = c; ctx.stroke();
    }
  }
  canvas.dataset.scale = String(view.s);  // screen x = viewX + scale * col, for scripts and tests
  canvas.dataset.viewX = String(view.x);
  canvas.dataset.viewY = String(view.y);
  canvas.dataset.centreRow = String((canvas.height / 2 - view.y) / view.s - 0.5);
  canvas.dataset.centreCol = String((canvas.width / 2 - view.x) / view.s - 0.5);
  $("zoom-level").textContent = (view.s / view.fit).toFixed(1) + "\u00d7";
}
function zoomAt(mx, my, factor) {
  const s = Math.min(Math.max(view.s * factor, view.fit * 0.5), Math.max(64, view.fit * 2));
  view.x = mx - (mx - view.x) * (s / view.s);
  view.y = my - (my - view.y) * (s / view.s);
  view.s = s;
  render();
}
function centreOn(row, col, s) {
  view.s = s;
  view.x = canvas.width / 2 - s * (col + 0.5);
  view.y = canvas.height / 2 - s * (row + 0.5);
  render();
}
canvas.addEventListener("wheel", (ev) => {
  ev.preventDefault();
  const rect = canvas.getBoundingClientRect();
  zoomAt(ev.clientX - rect.left - canvas.clientLeft, ev.clientY - rect.top - canvas.clientTop,
    Math.exp(-ev.deltaY * 0.0015));
}, {passive: false});
$("zoom-in").addEventListener("click", () => zoomAt(canvas.width / 2, canvas.height / 2, 1.5));
$("zoom-out").addEventListener("click", () => zoomAt(canvas.width / 2, canvas.height / 2, 1 / 1.5));
$("zoom-fit").addEventListener("click", fitView);
window.addEventListener("resize", () => {
  const cr = (canvas.height / 2 - view.y) / view.s, cc = (canvas.width / 2 - view.x) / view.s;
  resize();
  view.fit = Math.min(canvas.width / C, canvas.height / R);
  view.x = canvas.width / 2 - view.s * cc; view.y = canvas.height / 2 - view.s * cr;
  render();
});

function pixelOf(ev) {
  const rect = canvas.getBoundingClientRect();  // the drawing starts inside the border
  const mx = ev.clientX - rect.left - canvas.clientLeft, my = ev.clientY - rect.top - canvas.clientTop;
  const c = Math.floor((mx - view.x) / view.s), r = Math.floor((my - view.y) / view.s);
  return r >= 0 && c >= 0 && r < R && c < C ? [r, c] : null;
}
let drag = null, pinned = false, pending = null;
canvas.addEventListener("mousedown", (ev) => { drag = {x: ev.clientX, y: ev.clientY, moved: false}; });
window.addEventListener("mouseup", (ev) => {
  if (drag && !drag.moved && ev.target === canvas) {
    const at = pixelOf(ev);
    if (at) { pinned = true; showPixel(at[0], at[1]); }
  }
  drag = null;
});
canvas.addEventListener("mousemove", (ev) => {
  if (drag) {
    const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
    if (drag.moved || Math.abs(dx) + Math.abs(dy) > 3) {
      drag.moved = true; view.x += dx; view.y += dy; drag.x = ev.clientX; drag.y = ev.clientY;
      render();
    }
    return;
  }
  if (pinned) return;
  const at = pixelOf(ev);
  if (!at) return;
  if (pending === null) requestAnimationFrame(() => { const [r, c] = pending; pending = null; showPixel(r, c); });
  pending = at;
});
canvas.addEventListener("dblclick", () => { pinned = false; });

// ---- spectra: 8-bit principal-component codes, the top pixels in full -----------------------
const SP = D.spectra, K = SP.k;
const basis = floats(SP.basis), coef = bytes(SP.coef);
const fullIdx = new Int32Array(bytes(SP.full.index).buffer);
const fullVal = new Uint16Array(bytes(SP.full.values).buffer);
const X = D.wavelengths || Array.from({length: B}, (_, k) => k + 1);
function fullRow(p) {
  let lo = 0, hi = fullIdx.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (fullIdx[mid] === p) return mid;
    if (fullIdx[mid] < p) lo = mid + 1; else hi = mid - 1;
  }
  return -1;
}
// The spectrum of pixel p: {v, full} or null at no-data.
function spectrum(p) {
  if (!Number.isFinite(scores[p])) return null;
  const v = new Float64Array(B), i = fullRow(p);
  if (i >= 0) {
    if (fullVal[i * B] === 65535) return null;
    for (let k = 0; k < B; k++) v[k] = SP.full.offset[k] + SP.full.scale[k] * fullVal[i * B + k];
    return {v: v, full: true};
  }
  for (let k = 0; k < B; k++) v[k] = SP.mean[k];
  for (let j = 0; j < K; j++) {
    const a = SP.coefLo[j] + SP.coefStep[j] * coef[p * K + j];
    for (let k = 0; k < B; k++) v[k] += a * basis[j * B + k];
  }
  return {v: v, full: false};
}
function showPixel(r, c) {
  const p = r * C + c, x = spectrum(p);
  const sum = new Float64Array(B), sq = new Float64Array(B);
  const ho = Math.floor(D.outer / 2), hi = Math.floor(D.inner / 2);
  let n = 0;
  for (let dr = -ho; dr <= ho; dr++) for (let dc = -ho; dc <= ho; dc++) {
    if (Math.abs(dr) <= hi && Math.abs(dc) <= hi) continue;
    const rr = r + dr, cc = c + dc;
    if (rr < 0 || cc < 0 || rr >= R || cc >= C) continue;
    const y = spectrum(rr * C + cc);
    if (!y) continue;
    n++;
    for (let k = 0; k < B; k++) { sum[k] += y.v[k]; sq[k] += y.v[k] * y.v[k]; }
  }
  const mean = Array.from(sum, (v) => v / Math.max(n, 1));
  const std = Array.from(sq, (v, k) => Math.sqrt(Math.max(0, v / Math.max(n, 1) - mean[k] ** 2)));
  const s = scores[p];
  $("pixel-info").textContent = "row " + r + ", col " + c + ", score " +
    (Number.isFinite(s) ? s.toPrecision(5) + " (top " + (100 * Math.pow(10, -scale.shade(s) * scale.logM)).toPrecision(2) + " %)" : "no-data") +
    (gt ? (gt[p] ? ", truth: anomaly" : ", truth: background") : "") +
    "; spectrum " + (x ? (x.full ? "in full (16 bits a band)" : "from " + K + " principal components (8 bits each)") : "none") +
    "; background: " + n + " pixels (" + D.inner + "/" + D.outer + " window)";
  const series = [
    {x: X, band: {lo: mean.map((m, k) => m - std[k]), hi: mean.map((m, k) => m + std[k])}, colour: "#9ecae1", id: "bg-band"},
    {x: X, y: mean, colour: "#3182bd", id: "bg-mean"},
  ];
  if (x) series.push({x: X, y: Array.from(x.v), colour: "#d62728", id: "pixel-spectrum", width: 1.8});
  svgPlot($("spectrum"), series, {
    width: 480, height: 300, id: "spectrum",
    xLabel: D.wavelengths ? "wavelength (nm)" : "band", yLabel: "value",
    title: "red: pixel; blue: background mean \u00b1 std",
  });
}

// ---- the detections table --------------------------------------------------------------------
const F = D.detectionFields, at = Object.fromEntries(F.map((f, i) => [f, i]));
const COLUMNS = [["id", "id"], ["peak_score", "peak score"], ["mean_score", "mean score"], ["area_px", "pixels"],
  ["row", "row"], ["col", "col"]]
  .concat(D.georeferenced ? [["lon", "lon"], ["lat", "lat"], ["area_m2", "area m\u00b2"]] : [])
  .concat([["border_distance", "to border (px)"]]);
function fmt(f, v) {
  if (v === null || v === undefined) return "-";
  if (f === "lon" || f === "lat") return v.toFixed(6);
  if (f === "row" || f === "col") return v.toFixed(1);
  if (f === "area_m2") return v.toFixed(1);
  if (typeof v === "number" && !Number.isInteger(v)) return v.toPrecision(5);
  return String(v);
}
const table = $("detections");
table.tHead.rows[0].innerHTML = COLUMNS.map(([, label]) => "<th>" + label + "</th>").join("");
const tbody = table.tBodies[0];
const frag = document.createDocumentFragment();
for (const det of D.detections) {
  const tr = document.createElement("tr");
  tr.dataset.id = det[at.id];
  for (const [f] of COLUMNS) {
    const td = document.createElement("td");
    td.textContent = fmt(f, det[at[f]]);
    td.dataset.sort = det[at[f]] === null ? "-" : String(det[at[f]]);
    tr.appendChild(td);
  }
  frag.appendChild(tr);
}
tbody.appendChild(frag);
sortable(table);
$("det-caption").textContent = "The run's " + D.detections.length + " detection(s), the rows of detections.csv " +
  "(ids by decreasing peak score" + (D.minArea > 1 ? ", at least " + D.minArea + " pixels" : "") +
  (D.excludeBorder > 0 ? ", none within " + D.excludeBorder + " pixels of the edge" : "") + ")" +
  (D.georeferenced ? "" : "; lon/lat and areas in m\u00b2 need a georeferenced scene") +
  ". Click a header to sort, a row to centre the map on it and show its peak pixel's spectrum.";
const byId = new Map(D.detections.map((d) => [String(d[at.id]), d]));
tbody.addEventListener("click", (ev) => {
  const tr = ev.target.closest("tr");
  if (!tr) return;
  const det = byId.get(tr.dataset.id);
  for (const old of tbody.querySelectorAll("tr.selected")) old.classList.remove("selected");
  tr.classList.add("selected");
  selected = {row: det[at.row], col: det[at.col], area_px: det[at.area_px]};
  const s = Math.max(view.s, Math.min(canvas.width, canvas.height) / 41);
  centreOn(det[at.row], det[at.col], s);
  pinned = true;
  showPixel(det[at.peak_row], det[at.peak_col]);
});

// ---- the colour bar ----------------------------------------------------------------------------
(function colourBar() {
  const bar = $("colourbar"), bctx = bar.getContext("2d");
  for (let i = 0; i < bar.width; i++) {
    const c = colour(i / (bar.width - 1));
    bctx.fillStyle = "rgb(" + c.join(",") + ")";
    bctx.fillRect(i, 0, 1, bar.height);
  }
  const ticks = [];
  for (let k = 0; k <= Math.floor(scale.logM); k++) {
    ticks.push('<span style="left:' + (100 * k / scale.logM) + '%">' + (k ? "1e-" + k : "1") + "</span>");
  }
  ticks.push('<span id="thr-mark" class="thr-mark" title="threshold">\u25b2</span>');
  $("colourbar-ticks").innerHTML = ticks.join("");
})();

refreshStats();
fitView();
const rgbImg = $("rgb");
if (rgbImg.complete && rgbImg.naturalWidth) compose(); else { rgbImg.addEventListener("load", compose); compose(); }
