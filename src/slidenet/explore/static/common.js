/* Shared by the page's modules: the state, DOM helpers and number formatting. */
"use strict";

export const state = {
  info: null,        // GET /api/model
  result: null,      // the last POST /api/run
  decoded: [],       // per column: Float32Array of dequantised values
  selection: null,   // {layer, y, x, k}
  unit: null,        // the last GET /api/unit answer
  slide: null,       // {layer, k, pos, n, timer}
  busy: false,       // a run in flight
  pending: null,     // the next run to send when the current one returns
  runs: 0,
  showAll: false,    // every input channel in a conv unit's panel
};
window.exploreState = state; // for the browser tests and the curious

export const $ = (id) => document.getElementById(id);

export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

export function fmt(v) {
  if (v === null || v === undefined) return "pad";
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1000 || a < 0.001) return v.toExponential(2);
  return v.toFixed(a >= 10 ? 2 : a >= 1 ? 3 : 4);
}

export function say(text, error) {
  const m = $("message");
  m.textContent = text || "";
  m.className = error ? "error" : "";
}

