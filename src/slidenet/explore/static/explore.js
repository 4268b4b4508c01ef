/* slidenet explore: draws what the server computes. No math of the network happens here: every
   activation comes from POST /api/run (quantised per layer, see the README) and every number of
   a unit's panel from GET /api/unit. The modules (common, draw, panel and this one: requests,
   inputs, the slide) only decode, colour and animate them. */
"use strict";

import { $, el, say, state } from "./common.js";
import { buildColumns, decode, render } from "./draw.js";
import { showUnit } from "./panel.js";

/* ----- talking to the server ------------------------------------------------------------------------ */
async function api(url, options) {
  const response = await fetch(url, options);
  let body = null;
  try { body = await response.json(); } catch (err) { body = null; }
  if (!response.ok) throw new Error((body && body.error) || `${response.status} ${response.statusText}`);
  return body;
}

function run(request) {
  // one run in flight at a time; while drawing, only the latest stroke state is sent next
  if (state.busy) { state.pending = request; return; }
  state.busy = true;
  request().then((res) => {
    state.result = res;
    state.decoded = res.layers.map(decode);
    state.runs += 1;
    say(res.notes.join(" "), false);
    render();
    if (state.selection) fetchUnit(state.selection);
  }).catch((err) => say(err.message, true)).finally(() => {
    state.busy = false;
    document.body.dataset.runs = state.runs;
    const next = state.pending;
    state.pending = null;
    if (next) run(next);
  });
}

const invertQuery = () => ($("invert").checked ? "?invert=1" : "");

function runBlob(blob, type) {
  run(() => api(`/api/run${invertQuery()}`, { method: "POST", headers: { "Content-Type": type || "application/octet-stream" }, body: blob }));
}

function runIndex(i) {
  run(() => api("/api/run", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ dataset_index: i }) }));
}

function runCanvas() {
  run(() => new Promise((resolve) => $("draw").toBlob(resolve, "image/png")).then((blob) =>
    api("/api/run", { method: "POST", headers: { "Content-Type": "image/png" }, body: blob })));
}

/* ----- a unit's panel ------------------------------------------------------------------------------- */
function selectUnit(sel) {
  stopSlide();
  state.selection = sel;
  fetchUnit(sel);
}

function fetchUnit(sel) {
  if (!state.result) return;
  const q = new URLSearchParams({ run: state.result.run, layer: sel.layer, k: sel.k });
  if (sel.y !== undefined) { q.set("y", sel.y); q.set("x", sel.x); }
  const run = state.result.run;
  return api(`/api/unit?${q}`).then((unit) => {
    if (!state.result || state.result.run !== run) return;
    state.unit = unit;
    showUnit(unit);
    render();
  }).catch((err) => say(err.message, true));
}

/* ----- the slide: the filter moving over the layer below, the map filling in ------------------------ */
function stopSlide() {
  if (!state.slide) return;
  clearInterval(state.slide.timer);
  state.slide = null;
  $("slide").classList.remove("on");
  $("slide").textContent = "Slide";
  render();
}

function startSlide() {
  const u = state.unit;
  if (!u || !(u.kind === "conv" || u.kind === "pool")) return;
  const i = state.info.columns.findIndex((c) => c.name === u.layer);
  const col = state.info.columns[i];
  const [ho, wo] = col.shape;
  const [sh, sw] = col.strides;
  const [fh, fw] = [u.window.bottom - u.window.top, u.window.right - u.window.left];
  const pt = u.unit.y * sh - u.window.top, pl = u.unit.x * sw - u.window.left;
  const n = ho * wo;
  const step = Math.max(1, Math.ceil(n / 300));
  const slide = { layer: u.layer, below: u.below, k: u.unit.k, pos: -1, n, busy: false };
  state.slide = slide;
  $("slide").classList.add("on");
  $("slide").textContent = "Stop";
  slide.timer = setInterval(() => {
    slide.pos = Math.min(n - 1, slide.pos + step);
    const y = Math.floor(slide.pos / wo), x = slide.pos % wo;
    slide.unitRect = [y, x, y, x];
    const top = y * sh - pt, left = x * sw - pl;
    slide.windowRect = [top, left, top + fh, left + fw];
    render();
    if (!slide.busy) { // the panel follows with the server's numbers for the current position
      slide.busy = true;
      const q = new URLSearchParams({ run: state.result.run, layer: slide.layer, y, x, k: slide.k });
      api(`/api/unit?${q}`).then((unit) => { if (state.slide === slide) { state.unit = unit; showUnit(unit); } })
        .catch((err) => say(err.message, true)).finally(() => { slide.busy = false; });
    }
    if (slide.pos >= n - 1) {
      clearInterval(slide.timer);
      setTimeout(() => { if (state.slide === slide) stopSlide(); }, 600);
    }
  }, 40);
}

/* ----- the inputs ------------------------------------------------------------------------------------ */
function setupDrawing() {
  const cv = $("draw");
  const ctx = cv.getContext("2d");
  const clear = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, cv.width, cv.height); };
  clear();
  let last = null;
  const point = (e) => [(e.offsetX / cv.clientWidth) * cv.width, (e.offsetY / cv.clientHeight) * cv.height];
  cv.addEventListener("pointerdown", (e) => { cv.setPointerCapture(e.pointerId); last = point(e); stroke(last); });
  cv.addEventListener("pointermove", (e) => { if (last) { const p = point(e); stroke(p); last = p; } });
  const end = () => { if (last) { last = null; runCanvas(); } };
  cv.addEventListener("pointerup", end);
  cv.addEventListener("pointercancel", end);
  function stroke(p) {
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 20;
    ctx.lineCap = "round";
    ctx.beginPath();
    ctx.moveTo(last[0], last[1]);
    ctx.lineTo(p[0], p[1]);
    ctx.stroke();
    runCanvas();
  }
  $("clear").addEventListener("click", () => { clear(); runCanvas(); });
}

function setupData(data) {
  $("data-box").hidden = false;
  $("dataset-name").textContent = data.name;
  $("dataset-index").max = data.count - 1;
  const gallery = $("gallery");
  for (const ex of data.examples) {
    const img = el("img", { src: `/api/dataset/${ex.index}.png`, alt: `test image ${ex.index}`, "data-index": ex.index, title: `test image ${ex.index}` });
    img.addEventListener("click", () => { $("dataset-index").value = ex.index; runIndex(ex.index); });
    gallery.append(el("figure", {}, img, el("figcaption", { text: state.info.class_names[ex.label] ?? ex.label })));
  }
  $("dataset-load").addEventListener("click", () => runIndex(Number($("dataset-index").value)));
  $("dataset-random").addEventListener("click", () => {
    const i = Math.floor(Math.random() * data.count);
    $("dataset-index").value = i;
    runIndex(i);
  });
}

async function main() {
  try {
    state.info = await api("/api/model");
  } catch (err) {
    say(err.message, true);
    return;
  }
  const info = state.info;
  $("model-name").textContent = info.model;
  $("model-info").textContent = `input ${info.input_shape.join("\u00d7")} \u00b7 ${info.columns.length - 1} layers \u00b7 ${info.class_names.length} classes${info.graph ? " \u00b7 graph model (one column per layer, topological order)" : ""}`;
  buildColumns(selectUnit);
  $("upload").addEventListener("change", () => {
    const file = $("upload").files[0];
    if (file) runBlob(file, file.type);
  });
  $("slide").addEventListener("click", () => (state.slide ? stopSlide() : startSlide()));
  $("unit-close").addEventListener("click", () => { stopSlide(); state.selection = null; state.unit = null; $("unit").hidden = true; render(); });
  if (info.input_shape[2] === 1) { $("draw-box").hidden = false; setupDrawing(); }
  if (info.dataset) { setupData(info.dataset); runIndex(info.dataset.examples[0] ? info.dataset.examples[0].index : 0); }
  else if (info.input_shape[2] === 1) runCanvas();
  document.body.dataset.ready = "1";
}

main();
