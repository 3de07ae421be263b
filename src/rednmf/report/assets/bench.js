// The bench report: sortable tables, ROC curves per scene, score maps with a threshold slider.
for (const table of document.querySelectorAll("table.bench")) sortable(table);
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
  "#17becf", "#7f7f7f", "#bcbd22", "#000000", "#aec7e8"];
const BM = JSON.parse(document.getElementById("bench-data").textContent);
BM.maps.forEach((m, i) => {
  // ROC curves of every method of the scene
  const roc = document.getElementById("roc-" + i);
  if (roc) {
    const logx = roc.querySelector(".logx"), svg = roc.querySelector(".roc-plot");
    const methods = Object.keys(m.roc);
    const drawRoc = () => {
      const log = logx.checked;
      const series = methods.map((name, k) => {
        const c = m.roc[name], keep = c.fpr.map((f) => !log || f >= 1e-5);
        return {
          x: c.fpr.filter((_, j) => keep[j]).map((f) => (log ? Math.log10(f) : f)),
          y: c.tpr.filter((_, j) => keep[j]), colour: PALETTE[k % PALETTE.length],
          id: "roc-" + i + "-" + name, label: name + " (AUC " + c.auc.toFixed(4) + ")",
        };
      });
      svgPlot(svg, series, {
        width: 460, height: 340, id: "roc-" + i, yRange: [0, 1],
        xRange: log ? [-5, 0] : [0, 1], xFormat: log ? (v) => (v === 0 ? "1" : "1e" + v) : null,
        xLabel: "false-positive rate" + (log ? " (log)" : ""), yLabel: "true-positive rate",
        legend: series, legendX: log ? 66 : 240,
      });
    };
    logx.addEventListener("change", drawRoc);
    drawRoc();
  }
  // the score map with its slider
  const root = document.getElementById("map-" + i);
  const q = (name) => root.querySelector("." + name);
  const el = {thr: q("thr"), count: q("count"), pixels: q("pixels"), pd: q("pd"), pf: q("pf")};
  const gt = m.gt ? bytes(m.gt) : null;
  const canvas = q("map"), select = q("method"), slider = q("slider"), truth = q("truth");
  canvas.width = m.cols; canvas.height = m.rows;
  const ctx = canvas.getContext("2d");
  const detected = new Uint8Array(m.rows * m.cols);
  const lut = Array.from({length: 256}, (_, k) => colour(k / 255));
  let scores = null, scale = null, threshold = 0, shades = null;
  function update() {
    const found = components(detected, m.rows, m.cols, 1, 0, flag(scores, threshold, detected));
    showStats(el, threshold, tally(found.pixels, gt, totals), found.count, !!gt);
    const img = ctx.createImageData(m.cols, m.rows), d = img.data, showGt = truth && truth.checked;
    for (let p = 0; p < scores.length; p++) {
      const a = detected[p], b = showGt && gt[p];
      const c = a && b ? BOTH : a ? DET : b ? TRUTH : shades[p] < 0 ? NODATA : lut[shades[p]];
      d[4 * p] = c[0]; d[4 * p + 1] = c[1]; d[4 * p + 2] = c[2]; d[4 * p + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }
  let totals = null;
  function choose() {
    scores = floats(m.scores[select.value]);
    scale = scoreScale(scores);
    totals = truthTotals(scores, gt);
    shades = Int16Array.from(scores, (s) => (Number.isFinite(s) ? Math.round(255 * scale.shade(s)) : -1));
    threshold = scale.toThreshold(Number(slider.value));
    update();
  }
  const finite = floats(m.scores[select.value]).filter(Number.isFinite).length;
  slider.value = Math.round(2000 / Math.log10(Math.max(finite, 101)));  // the top 1 %
  select.addEventListener("change", choose);
  slider.addEventListener("input", () => {
    threshold = scale.toThreshold(Number(slider.value));
    update();
  });
  if (truth) truth.addEventListener("change", update);
  choose();
});
