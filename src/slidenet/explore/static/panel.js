/* A unit's panel: the numbers of GET /api/unit laid out as patch x kernel = products, sum, bias,
   activation (conv), window and winner (pool), largest contributions (dense). */
"use strict";

import { $, el, fmt, state } from "./common.js";

function grid(values, mark) {
  const table = el("table", { class: "grid" });
  values.forEach((row, a) => {
    const tr = el("tr");
    row.forEach((v, b) => {
      const m = mark ? mark(a, b) : "";
      tr.append(el("td", { class: m, text: fmt(v), title: v === null ? "padding" : String(v) }));
    });
    table.append(tr);
  });
  return table;
}

function slice(cube, d) { return cube.map((row) => row.map((v) => v[d])); }

function numberSpan(id, v) { return el("span", { id, "data-value": String(v), text: fmt(v) }); }

export function showUnit(u) {
  $("unit").hidden = false;
  const body = $("unit-body");
  body.textContent = "";
  const where = u.unit.y !== undefined && u.unit.y !== null ? `(y=${u.unit.y}, x=${u.unit.x}, ${u.kind === "conv" ? "filter" : "channel"} ${u.unit.k})` : `unit ${u.unit.k}`;
  $("unit-title").textContent = `${u.layer} ${where}`;
  $("slide").hidden = !(u.kind === "conv" || u.kind === "pool");
  body.dataset.kind = u.kind;
  body.dataset.layer = u.layer;
  const eq = el("div", { class: "equation" });
  const check = (a, b) => el("span", { class: Math.abs(a - b) <= 1e-4 * Math.max(1, Math.abs(b)) ? "ok" : "bad", text: Math.abs(a - b) <= 1e-4 * Math.max(1, Math.abs(b)) ? " \u2713 equals the map" : " \u2717 differs from the map" });
  if (u.kind === "conv" || u.kind === "dense") {
    const field = u.input_window ? ` \u00b7 receptive field in the input: ${u.input_window.height}\u00d7${u.input_window.width}` : "";
    if (u.kind === "conv") {
      const [fh, fw, d] = [u.patch.length, u.patch[0].length, u.patch[0][0].length];
      body.append(el("p", { text: `input patch ${fh}\u00d7${fw}\u00d7${d} of ${u.below} (rows ${u.window.top}..${u.window.bottom}, columns ${u.window.left}..${u.window.right}; grey cells are zero padding)${field}` }));
      const chans = el("div", { class: "channels" });
      const show = Math.min(d, state.showAll ? d : 8);
      for (let c = 0; c < show; c++) {
        const pad = (a, b) => (u.padding[a][b] ? "pad" : "");
        chans.append(el("div", { class: "channel" }, el("h4", { text: `channel ${c}: patch \u00d7 kernel = products (\u03a3 ${fmt(u.channel_sums[c])})` }),
          el("div", { class: "triple" }, grid(slice(u.patch, c), pad), el("span", { text: "\u00d7" }), grid(slice(u.kernel, c)), el("span", { text: "=" }), grid(slice(u.products, c), pad))));
      }
      body.append(chans);
      if (show < d) {
        const more = el("button", { type: "button", text: `show all ${d} channels` });
        more.addEventListener("click", () => { state.showAll = true; showUnit(u); });
        body.append(more);
      }
    } else {
      body.append(el("p", { text: `${u.inputs} inputs from ${u.below}; the largest contributions (input \u00d7 weight):` }));
      const table = el("table", { class: "contrib" }, el("tr", {}, ...["input", "at", "value", "weight", "product"].map((t) => el("th", { text: t }))));
      for (const c of u.top) {
        table.append(el("tr", {}, el("td", { text: c.index }), el("td", { text: c.at ? `(${c.at.join(", ")})` : "" }),
          el("td", { text: fmt(c.input) }), el("td", { text: fmt(c.weight) }), el("td", { text: fmt(c.product) })));
      }
      body.append(table, el("p", { class: "hint", text: `all other inputs together: ${fmt(u.rest)}` }));
    }
    eq.append("\u03a3 products = ", numberSpan("unit-sum", u.sum), el("br"),
      "+ bias = ", numberSpan("unit-bias", u.bias), el("br"),
      "= value before the activation: ", numberSpan("unit-value", u.value), el("br"),
      `${u.activation}(value) = `, numberSpan("unit-activated", u.activated), el("br"),
      "value in the layer's output: ", numberSpan("unit-map-value", u.map_value), check(u.activated, u.map_value));
  } else if (u.kind === "pool") {
    const win = u.winner ? (a, b) => (a === u.winner[0] && b === u.winner[1] ? "win" : u.padding[a][b] ? "pad" : "") : (a, b) => (u.padding[a][b] ? "pad" : "");
    body.append(el("p", { text: `${u.pool} pooling window of ${u.below}, channel ${u.unit.k} (rows ${u.window.top}..${u.window.bottom}, columns ${u.window.left}..${u.window.right})` }), grid(u.patch, win));
    if (u.pool === "max") eq.append(`max = input (${u.winner_at.join(", ")}) = `, numberSpan("unit-value", u.value));
    else eq.append(`${u.pool === "avg" ? "mean" : "sum"} of ${u.count} inputs = ${fmt(u.sum)}${u.pool === "avg" ? ` / ${u.count}` : ""} = `, numberSpan("unit-value", u.value));
    eq.append(el("br"), "value in the layer's output: ", numberSpan("unit-map-value", u.map_value), check(u.value, u.map_value));
  } else {
    eq.append(`value: `, numberSpan("unit-map-value", u.map_value));
  }
  body.append(eq);
  body.dataset.ready = `${u.layer}:${u.unit.y}:${u.unit.x}:${u.unit.k}`;
}

