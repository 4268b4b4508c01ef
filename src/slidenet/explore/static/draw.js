/* The columns: activation maps, bars and probabilities, with one colour scale per layer. */
"use strict";

import { $, el, fmt, state } from "./common.js";

/* ----- colours: one scale per layer ---------------------------------------------------------- */
const MAGMA = [[0, 0, 4], [59, 15, 112], [140, 41, 129], [222, 73, 104], [254, 159, 109],
  [252, 253, 191]];

function ramp(t) {
  t = Math.min(1, Math.max(0, t));
  const x = t * (MAGMA.length - 1);
  const i = Math.min(MAGMA.length - 2, Math.floor(x));
  const f = x - i;
  return MAGMA[i].map((c, j) => Math.round(c + f * (MAGMA[i + 1][j] - c)));
}

function colourFor(lo, hi, gray) {
  if (gray) return (v) => { const g = Math.round(255 * Math.min(1, Math.max(0, v))); return [g, g, g]; };
  if (lo < 0 && hi > 0) { // diverging: blue - white - red, symmetric around 0
    const m = Math.max(-lo, hi);
    return (v) => {
      const t = v / m;
      if (t >= 0) { const c = Math.round(255 * (1 - t)); return [255, c, c]; }
      const c = Math.round(255 * (1 + t));
      return [c, c, 255];
    };
  }
  const span = hi > lo ? hi - lo : 1;
  return (v) => ramp((v - lo) / span);
}

function legend(lo, hi, gray) {
  const c = el("canvas", { width: 80, height: 8 });
  const ctx = c.getContext("2d");
  const colour = colourFor(lo, hi, gray);
  for (let i = 0; i < 80; i++) {
    const v = lo + (hi - lo) * (i / 79);
    const [r, g, b] = colour(gray ? (v - lo) / ((hi - lo) || 1) : v);
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    ctx.fillRect(i, 0, 1, 8);
  }
  return el("div", { class: "legend" }, el("span", { text: fmt(lo) }), c, el("span", { text: fmt(hi) }));
}

/* ----- decoding the quantised activations ------------------------------------------------------ */
export function decode(layer) {
  const bin = atob(layer.data);
  const [lo, hi] = layer.range;
  const out = new Float32Array(bin.length);
  const step = (hi - lo) / 255;
  for (let i = 0; i < bin.length; i++) out[i] = lo + bin.charCodeAt(i) * step;
  return out;
}

/* ----- the page's columns ------------------------------------------------------------------------ */
function mapScale(h, w) { return Math.max(1, Math.floor(56 / Math.max(h, w))); }

let onUnitClick = () => {};

export function buildColumns(onUnit) {
  onUnitClick = onUnit;
  const net = $("network");
  net.textContent = "";
  const last = state.info.columns.length - 1;
  state.info.columns.forEach((col, i) => {
    const box = el("div", { class: "column", id: `col-${i}`, "data-layer": col.name, "data-kind": col.kind });
    const title = col.kind === "input" ? "input (preprocessed)" : col.name;
    const act = col.activation && col.activation !== "linear" ? `, ${col.activation}` : "";
    box.append(el("h3", { text: title }));
    const from = col.inputs.length > 1 ? ` \u2190 ${col.inputs.join(" + ")}` : "";
    box.append(el("div", { class: "meta", text: `${col.class}${act} \u00b7 ${col.shape.join("\u00d7")}${from}` }));
    box.append(el("div", { class: "legend-slot" }));
    if (i === last) box.append(el("table", { class: "probs", id: "probs" }));
    else if (col.shape.length === 3) buildMaps(box, col, i);
    else buildBars(box, col, i);
    net.append(box);
  });
}

function buildMaps(box, col, i) {
  const [h, w, c] = col.shape;
  const s = mapScale(h, w);
  if (col.kind === "input") {
    const cv = el("canvas", { width: w * s * 2, height: h * s * 2, class: "map", "data-col": i, "data-k": 0 });
    cv.addEventListener("click", (e) => clickMap(e, i, 0));
    box.append(el("div", { class: "input-view" }, cv));
    return;
  }
  const shown = Math.min(c, 128);
  const grid = el("div", { class: "maps" });
  grid.style.gridTemplateColumns = `repeat(${Math.min(8, Math.ceil(Math.sqrt(shown)))}, ${w * s}px)`;
  for (let k = 0; k < shown; k++) {
    const cv = el("canvas", { width: w * s, height: h * s, class: "map", "data-col": i, "data-k": k, title: `map ${k}` });
    cv.addEventListener("click", (e) => clickMap(e, i, k));
    grid.append(cv);
  }
  box.append(grid);
  if (shown < c) box.append(el("div", { class: "more", text: `first ${shown} of ${c} maps` }));
}

function buildBars(box, col, i) {
  const n = col.shape[0];
  const bh = n <= 32 ? 12 : n <= 256 ? 3 : 2;
  const cv = el("canvas", { width: 120, height: n * bh, class: "bars", "data-col": i, "data-bar": bh });
  cv.addEventListener("click", (e) => {
    const k = Math.floor((e.offsetY / cv.clientHeight) * n);
    onUnitClick({ layer: col.name, k: Math.min(n - 1, Math.max(0, k)) });
  });
  box.append(el("div", { class: "bars-wrap" }, cv));
}

function clickMap(e, i, k) {
  const col = state.info.columns[i];
  const cv = e.currentTarget;
  const [h, w] = col.shape;
  const y = Math.min(h - 1, Math.floor((e.offsetY / cv.clientHeight) * h));
  const x = Math.min(w - 1, Math.floor((e.offsetX / cv.clientWidth) * w));
  if (col.kind === "input") return;
  onUnitClick({ layer: col.name, y, x, k });
}

/* ----- drawing a run ------------------------------------------------------------------------------- */
export function render() {
  const res = state.result;
  if (!res) return;
  state.info.columns.forEach((col, i) => {
    const layer = res.layers[i];
    const box = $(`col-${i}`);
    const slot = box.querySelector(".legend-slot");
    slot.textContent = "";
    if (i !== state.info.columns.length - 1) {
      slot.append(legend(layer.range[0], layer.range[1], col.kind === "input"));
    }
    if (col.shape.length === 3) drawMaps(col, i, layer);
    else if (i !== state.info.columns.length - 1) drawBars(col, i, layer);
  });
  drawProbs();
  $("network").dataset.run = res.run;
}

function outlinesFor(i) {
  // rectangles (in this column's pixel coordinates) to outline: the unit, its window, its field
  const sel = state.selection, unit = state.unit, boxes = [];
  if (!sel || !unit || !unit.layer) return boxes;
  const col = state.info.columns[i];
  if (col.name === sel.layer && sel.y !== undefined) boxes.push({ k: sel.k, r: [sel.y, sel.x, sel.y, sel.x], colour: "#00a86b" });
  if (unit.window && col.name === unit.below) {
    const w = unit.window;
    boxes.push({ k: null, r: [w.top, w.left, w.bottom, w.right], colour: "#ff2d55" });
  }
  if (unit.input_window && i === 0) {
    const w = unit.input_window;
    boxes.push({ k: null, r: [w.top, w.left, w.bottom, w.right], colour: "#ff2d55" });
  }
  return boxes;
}

function drawMaps(col, i, layer) {
  const values = state.decoded[i];
  const [h, w, c] = col.shape;
  const gray = col.kind === "input";
  const colour = colourFor(layer.range[0], layer.range[1], gray);
  const boxes = outlinesFor(i);
  const slide = state.slide && state.slide.layer === col.name ? state.slide : null;
  const below = state.slide && state.slide.below === col.name ? state.slide : null;
  for (const cv of $(`col-${i}`).querySelectorAll("canvas.map")) {
    const k = Number(cv.dataset.k);
    const img = new ImageData(w, h);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const p = y * w + x;
        let rgb;
        if (gray && c === 3) rgb = [0, 1, 2].map((j) => Math.round(255 * values[p * 3 + j]));
        else if (slide && slide.k === k && p > slide.pos) rgb = [226, 230, 236];
        else rgb = colour(values[p * c + k]);
        img.data.set([rgb[0], rgb[1], rgb[2], 255], p * 4);
      }
    }
    const ctx = cv.getContext("2d");
    const off = new OffscreenCanvas(w, h);
    off.getContext("2d").putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.clearRect(0, 0, cv.width, cv.height);
    ctx.drawImage(off, 0, 0, cv.width, cv.height);
    const sx = cv.width / w, sy = cv.height / h;
    const rects = boxes.filter((b) => b.k === null || b.k === k);
    if (slide && slide.k === k) rects.push({ r: slide.unitRect, colour: "#00a86b" });
    if (below) rects.push({ r: below.windowRect, colour: "#ff2d55" });
    for (const b of rects) {
      const [t, l, bt, rt] = b.r;
      ctx.strokeStyle = b.colour;
      ctx.lineWidth = 2;
      ctx.strokeRect(l * sx + 1, t * sy + 1, (rt - l + 1) * sx - 2, (bt - t + 1) * sy - 2);
    }
  }
}

function drawBars(col, i, layer) {
  const values = state.decoded[i];
  const cv = $(`col-${i}`).querySelector("canvas.bars");
  const ctx = cv.getContext("2d");
  const bh = Number(cv.dataset.bar);
  const [lo, hi] = layer.range;
  const left = Math.min(0, lo), right = Math.max(0, hi);
  const span = right - left || 1;
  const zero = ((0 - left) / span) * cv.width;
  ctx.clearRect(0, 0, cv.width, cv.height);
  const sel = state.selection;
  for (let k = 0; k < values.length; k++) {
    const v = values[k];
    const x = ((v - left) / span) * cv.width;
    ctx.fillStyle = sel && sel.layer === col.name && sel.k === k ? "#00a86b" : v >= 0 ? "#0b63ce" : "#d9534f";
    ctx.fillRect(Math.min(zero, x), k * bh, Math.max(1, Math.abs(x - zero)), Math.max(1, bh - (bh > 2 ? 1 : 0)));
  }
}

function drawProbs() {
  const res = state.result;
  const table = $("probs");
  table.textContent = "";
  const outCol = state.info.columns[state.info.columns.length - 1];
  res.probabilities.forEach((p, k) => {
    const bar = el("div");
    bar.style.width = `${Math.round(p * 100)}%`;
    const row = el("tr", { class: k === res.predicted ? "top" : "", "data-class": k },
      el("td", { text: res.class_names[k] }), el("td", { class: "bar" }, bar),
      el("td", { class: "pct", text: `${(100 * p).toFixed(1)}%` }));
    row.addEventListener("click", () => onUnitClick({ layer: outCol.name, k: Math.min(k, outCol.shape[0] - 1) }));
    table.append(row);
  });
  const pred = $("prediction");
  pred.textContent = `${res.predicted_name} (${(100 * res.probabilities[res.predicted]).toFixed(1)}%)`;
  pred.dataset.class = res.predicted;
  const truth = $("true-label");
  if (res.source && res.source.label !== undefined) {
    truth.textContent = `true label: ${res.class_names[res.source.label] ?? res.source.label} (test image ${res.source.dataset_index})`;
    truth.dataset.label = res.source.label;
  } else {
    truth.textContent = "";
    delete truth.dataset.label;
  }
  $("timing").textContent = `server: ${res.server_ms} ms`;
}

