// lepton ui: a small single-page dashboard. Everything is drawn here, with
// SVG written by hand: no library, nothing fetched from outside this server.
"use strict";

const main = document.getElementById("main");
const live = document.getElementById("live");

// ---- helpers ---------------------------------------------------------------

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function fmt(v, digits = 4) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (typeof v !== "number") return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return v.toLocaleString("en-US");
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
  return v.toFixed(digits).replace(/\.?0+$/, "");
}

// cost: a resource without a price (everything on this machine) costs nothing per hour.
function cost(c) {
  return "$" + (c || 0).toFixed(2) + "/h";
}

function badge(s) {
  return `<span class="badge b-${esc(s || "")}">${esc(s || "–")}</span>`;
}

function link(addr) {
  return `<a href="#/r/${encodeURIComponent(addr)}">${esc(addr)}</a>`;
}

async function getJSON(url) {
  const r = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  if (!r.ok) throw new Error((await r.text()).trim() || r.statusText);
  return r.json();
}

function showError(e) {
  main.innerHTML = `<p class="err">${esc(e.message || e)}</p>`;
}

// ---- charts ----------------------------------------------------------------

const palette = ["#3a5bd9", "#e0762b", "#23945a", "#c8372d", "#8a4fc7", "#2a9fb0"];

function niceTicks(lo, hi, n) {
  if (!(hi > lo)) { hi = lo + 1; }
  const raw = (hi - lo) / n;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

// lineChart draws series of [x, y] points. Each point is a circle with
// data-series, data-x and data-y, so a test (or a curious person) can read
// exactly what is drawn.
function lineChart({ id, title, series, xLabel, yLabel, xTime, integerX, yMin }) {
  const W = 560, H = 250, L = 58, R = 14, T = 12, B = 40;
  const all = series.flatMap((s) => s.points);
  let x0 = Math.min(...all.map((p) => p[0])), x1 = Math.max(...all.map((p) => p[0]));
  let y0 = Math.min(...all.map((p) => p[1])), y1 = Math.max(...all.map((p) => p[1]));
  if (!all.length) { x0 = 0; x1 = 1; y0 = 0; y1 = 1; }
  if (yMin !== undefined) y0 = Math.min(y0, yMin);
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  if (y1 === y0) { const d = Math.abs(y0) * 0.1 || 1; if (yMin === undefined) y0 -= d; y1 += d; }
  const pad = (y1 - y0) * 0.06; y1 += pad; if (yMin === undefined) y0 -= pad;
  const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  let svg = `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}" id="${esc(id)}">`;
  for (const t of niceTicks(y0, y1, 5)) {
    svg += `<line class="grid" x1="${L}" x2="${W - R}" y1="${sy(t)}" y2="${sy(t)}"/>`;
    svg += `<text class="tick" x="${L - 6}" y="${sy(t) + 3}" text-anchor="end">${esc(fmt(t, 3))}</text>`;
  }
  let xt = niceTicks(x0, x1, 6);
  if (integerX) xt = xt.filter((v) => Number.isInteger(v));
  for (const t of xt) {
    const label = xTime ? new Date(t).toLocaleTimeString("en-GB") : fmt(t, 2);
    svg += `<text class="tick" x="${sx(t)}" y="${H - B + 14}" text-anchor="middle">${esc(label)}</text>`;
  }
  svg += `<line class="axis" x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}"/><line class="axis" x1="${L}" x2="${L}" y1="${T}" y2="${H - B}"/>`;
  svg += `<text class="tick" x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle">${esc(xLabel || "")}</text>`;
  svg += `<text class="tick" transform="translate(12 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel || "")}</text>`;
  series.forEach((s, i) => {
    const color = s.color || palette[i % palette.length];
    if (s.points.length > 1) {
      const d = s.points.map((p, k) => `${k ? "L" : "M"}${sx(p[0]).toFixed(1)} ${sy(p[1]).toFixed(1)}`).join(" ");
      svg += `<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`;
    }
    const r = s.points.length > 120 ? 1.5 : 3.2;
    for (const p of s.points) {
      svg += `<circle class="pt" r="${r}" cx="${sx(p[0]).toFixed(1)}" cy="${sy(p[1]).toFixed(1)}" fill="${color}" data-series="${esc(s.name)}" data-x="${p[0]}" data-y="${p[1]}"><title>${esc(s.name)} ${esc(xTime ? new Date(p[0]).toLocaleTimeString("en-GB") : fmt(p[0]))}: ${esc(fmt(p[1], 5))}</title></circle>`;
    }
    svg += `<rect x="${L + 10 + i * 130}" y="${T + 2}" width="10" height="10" fill="${color}"/><text class="legend" x="${L + 24 + i * 130}" y="${T + 11}">${esc(s.name)}</text>`;
  });
  if (!all.length) svg += `<text class="tick" x="${(L + W) / 2}" y="${H / 2}" text-anchor="middle">no data yet</text>`;
  svg += "</svg>";
  return `<div class="chart"><div class="title">${esc(title)}</div>${svg}</div>`;
}

function heat(v, max) {
  const t = max > 0 ? v / max : 0;
  const c = (a, b) => Math.round(a + (b - a) * t);
  return `rgb(${c(247, 42)},${c(248, 77)},${c(252, 186)})`;
}

function confusionChart(matrix, labels) {
  const n = matrix.length, cell = Math.max(18, Math.min(44, Math.floor(440 / Math.max(n, 1))));
  const L = 90, T = 30, W = L + n * cell + 10, H = T + n * cell + 40;
  const max = Math.max(1, ...matrix.flat());
  let svg = `<svg class="cm" id="confusion" viewBox="0 0 ${W} ${H}" role="img" aria-label="confusion matrix">`;
  svg += `<text class="tick" x="${L + (n * cell) / 2}" y="12" text-anchor="middle">predicted</text>`;
  svg += `<text class="tick" transform="translate(10 ${T + (n * cell) / 2}) rotate(-90)" text-anchor="middle">true class</text>`;
  for (let i = 0; i < n; i++) {
    const name = labels[i] !== undefined ? String(labels[i]) : String(i);
    svg += `<text class="tick" x="${L - 4}" y="${T + i * cell + cell / 2 + 3}" text-anchor="end">${esc(name.slice(0, 12))}</text>`;
    svg += `<text class="tick" x="${L + i * cell + cell / 2}" y="${T - 4}" text-anchor="middle">${esc(name.slice(0, 6))}</text>`;
    for (let j = 0; j < n; j++) {
      const v = matrix[i][j];
      svg += `<rect x="${L + j * cell}" y="${T + i * cell}" width="${cell - 1}" height="${cell - 1}" fill="${heat(v, max)}" data-true="${i}" data-pred="${j}" data-count="${v}"><title>${esc(name)} → ${esc(labels[j] ?? j)}: ${v}</title></rect>`;
      if (cell >= 22) svg += `<text x="${L + j * cell + cell / 2}" y="${T + i * cell + cell / 2 + 4}" text-anchor="middle" fill="${v > max / 2 ? "#fff" : "#1d2330"}">${v}</text>`;
    }
  }
  svg += "</svg>";
  return svg;
}

function histogram(h) {
  const W = 200, H = 70, n = h.counts.length, max = Math.max(1, ...h.counts);
  let bars = "";
  h.counts.forEach((c, i) => {
    const bh = (c / max) * (H - 4);
    bars += `<rect class="bar" x="${(i * W) / n + 0.5}" y="${H - bh}" width="${Math.max(W / n - 1, 1)}" height="${bh}"><title>${c}</title></rect>`;
  });
  return `<div class="hist" data-column="${esc(h.column)}"><div class="name" title="${esc(h.column)}">${esc(h.column)}</div><svg viewBox="0 0 ${W} ${H}" preserveAspectRatio="none">${bars}</svg><div class="range"><span>${esc(fmt(h.min, 3))}</span><span>${esc(fmt(h.max, 3))}</span></div></div>`;
}

// ---- pages -----------------------------------------------------------------

let page = null; // { onTick(tick) } of the page on screen

const statusColor = { ready: "#dff3e7", succeeded: "#dff3e7", serving: "#dff3e7", running: "#dcebf9", tainted: "#f8dfdd", failed: "#f8dfdd" };
// bigGraph: above this many nodes the graph is drawn on a canvas: a browser
// takes seconds to lay out ten thousand SVG elements, a canvas milliseconds.
const bigGraph = 1500;
// tableRows: rows of the resource table shown at once (the filter finds the rest).
const tableRows = 500;
const kindColor = { dataset: "#23945a", training: "#3a5bd9", endpoint: "#e0762b", cluster: "#8a4fc7", batch_inference: "#2a9fb0" };

function graphSVG(g) {
  const nw = 230, nh = 34, pad = 20;
  const parts = [`<svg id="graph" xmlns="http://www.w3.org/2000/svg" viewBox="${-pad} ${-pad} ${Math.max(g.width, nw) + 2 * pad} ${Math.max(g.height, nh) + 2 * pad}" preserveAspectRatio="xMinYMin meet">`];
  parts.push("<g class=\"edges\">");
  for (const n of g.nodes) {
    if (!n.d) continue;
    for (const j of n.d) {
      const m = g.nodes[j];
      const x1 = m.x + nw, y1 = m.y + nh / 2, x2 = n.x, y2 = n.y + nh / 2, mx = (x1 + x2) / 2;
      parts.push(`<path class="edge" d="M${x1} ${y1} C${mx} ${y1} ${mx} ${y2} ${x2} ${y2}"/>`);
    }
  }
  parts.push("</g>");
  for (const n of g.nodes) {
    const label = n.a.length > 32 ? n.a.slice(0, 31) + "…" : n.a;
    const fill = statusColor[n.s] || "#eef0f4";
    const tip = `${n.a}: ${n.k}, ${n.s}, ${cost(n.c)}`;
    parts.push(`<g class="node" data-address="${esc(n.a)}" data-kind="${esc(n.k)}" data-status="${esc(n.s)}" transform="translate(${n.x} ${n.y})"><title>${esc(tip)}</title>` +
      `<rect class="box" width="${nw}" height="${nh}" rx="5" fill="${fill}" stroke="#c3c9d4"/><rect width="5" height="${nh}" rx="2" fill="${kindColor[n.k] || "#6b7385"}"/>` +
      `<text x="11" y="14">${esc(label)}</text><text class="sub" x="11" y="28">${esc(n.k)} · ${esc(n.s)} · ${esc(cost(n.c))}</text></g>`);
  }
  parts.push("</svg>");
  return parts.join("");
}

// fitGraph shows a small graph at its natural size, and a large one whole.
function fitGraph(box, g) {
  const svg = box.querySelector("svg"), pad = 20;
  const w = box.clientWidth, gw = Math.max(g.width, 230) + 2 * pad, gh = Math.max(g.height, 34) + 2 * pad;
  const scale = Math.min(1, w / gw);
  box.style.height = Math.round(Math.min(window.innerHeight * 0.6, Math.max(120, gh * scale + 4))) + "px";
  if (scale === 1) svg.setAttribute("viewBox", `${-pad} ${-pad} ${w} ${gh}`);
}

// graphCanvas draws a large graph on a canvas: edges, a box per node
// coloured by status and edged by kind, and labels once zoomed in enough to
// read them. Scroll zooms, drag moves, a click opens the node under it.
function graphCanvas(box, g) {
  const nw = 230, nh = 34, pad = 20, colW = 280, rowH = 44;
  const canvas = document.createElement("canvas");
  canvas.id = "graph-canvas";
  canvas.dataset.nodes = String(g.nodes.length);
  box.appendChild(canvas);
  const at = new Map(); // "col,row" -> node index
  g.nodes.forEach((n, i) => at.set(`${Math.round(n.x / colW)},${Math.round(n.y / rowH)}`, i));
  const dpr = window.devicePixelRatio || 1;
  let W = box.clientWidth, H = box.clientHeight;
  const fit = Math.min(W / (g.width + 2 * pad), H / (g.height + 2 * pad));
  let view = { k: fit, x: -pad, y: -pad };
  let queued = false;
  function draw() {
    queued = false;
    W = box.clientWidth; H = box.clientHeight;
    canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
    canvas.style.width = W + "px"; canvas.style.height = H + "px";
    const c = canvas.getContext("2d");
    c.setTransform(dpr, 0, 0, dpr, 0, 0);
    c.fillStyle = "#fff"; c.fillRect(0, 0, W, H);
    c.setTransform(dpr * view.k, 0, 0, dpr * view.k, -view.x * view.k * dpr, -view.y * view.k * dpr);
    const x0 = view.x, y0 = view.y, x1 = view.x + W / view.k, y1 = view.y + H / view.k;
    const visible = (n) => n.x + nw >= x0 && n.x <= x1 && n.y + nh >= y0 && n.y <= y1;
    c.beginPath();
    for (const n of g.nodes) {
      if (!n.d) continue;
      for (const j of n.d) {
        const m = g.nodes[j];
        if (!visible(n) && !visible(m)) continue;
        c.moveTo(m.x + nw, m.y + nh / 2); c.lineTo(n.x, n.y + nh / 2);
      }
    }
    c.strokeStyle = "#b4bccb"; c.lineWidth = Math.max(1, 1 / view.k); c.stroke();
    const byFill = new Map();
    for (const n of g.nodes) {
      if (!visible(n)) continue;
      const key = (statusColor[n.s] || "#eef0f4") + "|" + (kindColor[n.k] || "#6b7385");
      if (!byFill.has(key)) byFill.set(key, []);
      byFill.get(key).push(n);
    }
    let drawn = 0;
    for (const ns of byFill.values()) drawn += ns.length;
    canvas.dataset.drawn = String(drawn);
    for (const [key, ns] of byFill) {
      const [fill, edge] = key.split("|");
      c.beginPath();
      for (const n of ns) c.rect(n.x, n.y, nw, nh);
      c.fillStyle = fill; c.fill();
      c.beginPath();
      for (const n of ns) c.rect(n.x, n.y, 5, nh);
      c.fillStyle = edge; c.fill();
    }
    if (view.k > 0.45) {
      c.fillStyle = "#1d2330"; c.font = "12px system-ui, sans-serif";
      for (const n of g.nodes) {
        if (!visible(n)) continue;
        c.fillText(n.a.length > 32 ? n.a.slice(0, 31) + "…" : n.a, n.x + 11, n.y + 14);
        c.fillStyle = "#6b7385";
        c.fillText(`${n.k} · ${n.s} · ${cost(n.c)}`, n.x + 11, n.y + 28);
        c.fillStyle = "#1d2330";
      }
    }
  }
  const redraw = () => { if (!queued) { queued = true; requestAnimationFrame(draw); } };
  const nodeAt = (e) => {
    const r = canvas.getBoundingClientRect();
    const x = view.x + (e.clientX - r.left) / view.k, y = view.y + (e.clientY - r.top) / view.k;
    const i = at.get(`${Math.floor(x / colW)},${Math.floor(y / rowH)}`);
    if (i === undefined) return null;
    const n = g.nodes[i];
    return x >= n.x && x <= n.x + nw && y >= n.y && y <= n.y + nh ? n : null;
  };
  box.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = canvas.getBoundingClientRect();
    const px = view.x + (e.clientX - r.left) / view.k, py = view.y + (e.clientY - r.top) / view.k;
    view.k *= e.deltaY > 0 ? 1 / 1.2 : 1.2;
    view.x = px - (e.clientX - r.left) / view.k; view.y = py - (e.clientY - r.top) / view.k;
    redraw();
  }, { passive: false });
  let drag = null, moved = false;
  box.addEventListener("pointerdown", (e) => { drag = { x: e.clientX, y: e.clientY, vx: view.x, vy: view.y }; moved = false; });
  window.addEventListener("pointerup", () => { drag = null; });
  box.addEventListener("pointermove", (e) => {
    if (!drag) {
      const n = nodeAt(e);
      canvas.title = n ? `${n.a}: ${n.k}, ${n.s}, ${cost(n.c)}` : "";
      return;
    }
    if (Math.abs(e.clientX - drag.x) + Math.abs(e.clientY - drag.y) > 3) moved = true;
    view.x = drag.vx - (e.clientX - drag.x) / view.k; view.y = drag.vy - (e.clientY - drag.y) / view.k;
    redraw();
  });
  box.addEventListener("click", (e) => {
    if (moved) return;
    const n = nodeAt(e);
    if (n) location.hash = "#/r/" + encodeURIComponent(n.a);
  });
  draw();
  // For tests and the curious: where each node is on screen, in CSS pixels.
  window.leptonGraphView = () => ({ k: view.k, x: view.x, y: view.y, dpr });
}

function panZoom(box) {
  const svg = box.querySelector("svg");
  if (!svg) return;
  let vb = svg.getAttribute("viewBox").split(" ").map(Number);
  const set = () => svg.setAttribute("viewBox", vb.join(" "));
  box.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = svg.getBoundingClientRect();
    const k = e.deltaY > 0 ? 1.15 : 1 / 1.15;
    const px = vb[0] + ((e.clientX - r.left) / r.width) * vb[2], py = vb[1] + ((e.clientY - r.top) / r.height) * vb[3];
    vb = [px - (px - vb[0]) * k, py - (py - vb[1]) * k, vb[2] * k, vb[3] * k];
    set();
  }, { passive: false });
  let drag = null, moved = false;
  box.addEventListener("pointerdown", (e) => { drag = { x: e.clientX, y: e.clientY, vb: vb.slice() }; moved = false; });
  window.addEventListener("pointerup", () => { drag = null; });
  box.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const r = svg.getBoundingClientRect(), s = Math.max(drag.vb[2] / r.width, drag.vb[3] / r.height);
    if (Math.abs(e.clientX - drag.x) + Math.abs(e.clientY - drag.y) > 3) moved = true;
    vb = [drag.vb[0] - (e.clientX - drag.x) * s, drag.vb[1] - (e.clientY - drag.y) * s, vb[2], vb[3]];
    set();
  });
  box.addEventListener("click", (e) => {
    if (moved) return;
    const n = e.target.closest(".node");
    if (n) location.hash = "#/r/" + encodeURIComponent(n.dataset.address);
  });
}

async function graphPage() {
  let version = null;
  async function load() {
    const g = await getJSON("/api/graph");
    version = g.version;
    if (g.error) { showError(g.error); return; }
    const kinds = Object.entries(g.kinds).sort().map(([k, n]) => `<div class="card"><div class="v">${fmt(n)}</div><div class="k">${esc(k)}</div></div>`).join("");
    if (!g.nodes.length) {
      main.innerHTML = `<h1>Resources</h1><p class="muted">The state is empty: nothing has been applied here yet. Run <code>lepton apply</code>.</p>`;
      return;
    }
    const row = (n) => `<tr data-address="${esc(n.a)}"><td>${link(n.a)}</td><td>${esc(n.k)}</td><td>${badge(n.s)}</td><td class="num">${esc(cost(n.c))}</td></tr>`;
    // The table shows the first tableRows matches: a browser lays out
    // 10,000 rows in seconds, and the filter finds any resource.
    const tableHTML = (q) => {
      const hit = q === "" ? g.nodes : g.nodes.filter((n) => `${n.a} ${n.k} ${n.s}`.toLowerCase().includes(q));
      const more = hit.length > tableRows ? `<p class="muted" id="table-more">Showing ${tableRows} of ${fmt(hit.length)}: filter to find the others.</p>` : "";
      return `<table id="resources"><thead><tr><th>Address</th><th>Kind</th><th>Status</th><th class="num">Cost</th></tr></thead><tbody>${hit.slice(0, tableRows).map(row).join("")}</tbody></table>${more}`;
    };
    main.innerHTML = `<h1>Resources</h1>
      <div class="cards"><div class="card"><div class="v" id="count">${fmt(g.nodes.length)}</div><div class="k">resources (serial ${g.serial})</div></div>${kinds}
      <div class="card"><div class="v">${esc(cost(g.cost_per_hour))}</div><div class="k">cost per hour</div></div></div>
      <div class="graphbox" id="graphbox">${g.nodes.length <= bigGraph ? graphSVG(g) : ""}</div>
      <p class="muted">Scroll to zoom, drag to move, click a resource for its details.</p>
      <div class="toolbar"><input type="search" id="filter" placeholder="Filter by address, kind or status"></div>
      <div class="panel" id="table">${tableHTML("")}</div>`;
    const box = document.getElementById("graphbox");
    if (g.nodes.length <= bigGraph) {
      fitGraph(box, g);
      panZoom(box);
    } else {
      graphCanvas(box, g);
    }
    const f = document.getElementById("filter");
    f.addEventListener("input", () => { document.getElementById("table").innerHTML = tableHTML(f.value.trim().toLowerCase()); });
    window.leptonRendered = performance.now();
  }
  await load();
  return { onTick: (t) => { if (t.state !== version) return load(); } };
}

async function planPage() {
  async function load(force) {
    const [p, a] = await Promise.all([getJSON("/api/plan" + (force ? "?refresh=1" : "")), getJSON("/api/apply")]);
    let html = `<h1>Plan</h1><div class="toolbar"><button id="replan">Plan again</button> ${badge(p.computing ? "computing" : p.status)}`;
    if (p.computed_at) html += ` <span class="muted">computed ${esc(new Date(p.computed_at).toLocaleTimeString("en-GB"))} in ${fmt(p.seconds, 2)} s</span>`;
    html += "</div>";
    if (p.status === "error" || p.status === "none") html += `<p class="err">${esc(p.error)}</p>`;
    if (p.status === "ready") {
      html += `<div class="cards"><div class="card"><div class="v" id="plan-add">${p.add}</div><div class="k">to add</div></div><div class="card"><div class="v" id="plan-change">${p.change}</div><div class="k">to change</div></div><div class="card"><div class="v" id="plan-destroy">${p.destroy}</div><div class="k">to destroy</div></div></div>`;
      if (p.changes.length) {
        html += `<div class="panel"><table id="plan-changes"><thead><tr><th></th><th>Address</th><th>Action</th><th>Reason</th><th class="num">Cost</th></tr></thead><tbody>` +
          p.changes.map((c) => `<tr><td>${esc(c.symbol)}</td><td>${esc(c.address)}</td><td>${esc(c.action)}</td><td>${esc(c.reason || "")}</td><td class="num">${c.cost_per_hour ? esc(cost(c.cost_per_hour)) : ""}</td></tr>`).join("") +
          `</tbody></table>${p.more ? `<p class="muted">and ${p.more} more</p>` : ""}</div>`;
      } else {
        html += `<p id="plan-none">No changes: the infrastructure matches the configuration.</p>`;
      }
      html += `<details><summary>The plan as lepton plan prints it</summary><pre>${esc(p.text)}</pre></details>`;
    } else if (p.status === "computing") {
      html += `<p class="muted">Planning… (a refresh reads every resource, as lepton plan does; the state is not changed)</p>`;
    }
    html += `<h2>Last apply</h2>`;
    const r = a.apply;
    if (a.error) html += `<p class="err">${esc(a.error)}</p>`;
    if (!r) {
      html += `<p class="muted">No apply recorded here yet.</p>`;
    } else {
      html += `<div class="cards"><div class="card"><div class="v">${esc(r.operation)}</div><div class="k">finished ${esc(new Date(r.finished).toLocaleString("en-GB"))}</div></div>
        <div class="card"><div class="v">${r.added}</div><div class="k">added</div></div><div class="card"><div class="v">${r.changed}</div><div class="k">changed</div></div><div class="card"><div class="v">${r.destroyed}</div><div class="k">destroyed</div></div>
        <div class="card"><div class="v">${fmt((new Date(r.finished) - new Date(r.started)) / 1000, 1)} s</div><div class="k">took</div></div></div>`;
      if (r.interrupted) html += `<p class="err">The apply was interrupted.</p>`;
      for (const e of r.errors || []) html += `<p class="err">${esc(e)}</p>`;
      html += `<div class="panel"><table id="apply-resources"><thead><tr><th>Address</th><th>Action</th><th class="num">Seconds</th><th>Result</th></tr></thead><tbody>` +
        (r.resources || []).map((e) => `<tr><td>${link(e.address)}</td><td>${esc(e.action)}</td><td class="num">${fmt(e.seconds, 2)}</td><td>${e.error ? `<span class="err">${esc(e.error)}</span>` : esc(e.summary || "ok")}</td></tr>`).join("") +
        `</tbody></table></div>`;
    }
    main.innerHTML = html;
    document.getElementById("replan").addEventListener("click", () => load(true).catch(showError));
    return p;
  }
  let p = await load(false);
  let n = 0;
  return { onTick: async () => { if (p.computing || p.status === "computing" || ++n % 15 === 0) p = await load(false); } };
}

function detailsBlock(r) {
  return `<details><summary>Attributes (as lepton state show prints them)</summary><pre>${esc(r.text)}</pre></details>` +
    (r.dependencies.length ? `<p class="muted">Depends on: ${r.dependencies.map(esc).join(", ")}</p>` : "") +
    (r.dependents.length ? `<p class="muted">Used by: ${r.dependents.map(link).join(", ")}</p>` : "");
}

async function resourcePage(addr) {
  const r = await getJSON("/api/resource?addr=" + encodeURIComponent(addr));
  const kindPage = { training: trainingPage, dataset: datasetPage, endpoint: endpointPage }[r.kind];
  if (kindPage) return kindPage(r);
  main.innerHTML = `<h1>${esc(r.address)}</h1><p>${esc(r.kind)} ${badge(r.status)} <span class="muted">provider ${esc(r.provider)}</span></p><pre>${esc(r.text)}</pre>` +
    (r.dependents.length ? `<p class="muted">Used by: ${r.dependents.map(link).join(", ")}</p>` : "");
  return null;
}

function logsLink(addr) {
  return `<a href="#/logs/${encodeURIComponent(addr)}">Logs</a>`;
}

async function trainingPage(r) {
  async function load() {
    const t = await getJSON("/api/training?addr=" + encodeURIComponent(r.address));
    const metrics = Object.entries(t.metrics).sort().map(([k, v]) => `<div class="card"><div class="v" data-metric="${esc(k)}">${esc(fmt(v))}</div><div class="k">${esc(k)}</div></div>`).join("");
    let html = `<h1>${esc(t.address)}</h1><p>${badge(t.status)} <span class="muted">${esc(t.objective)} · ${t.objective === "q_learning" ? "episodes" : "epochs"} ${fmt(t.objective === "q_learning" ? (t.episodes.at(-1)?.episode ?? 0) : t.epochs.length)} of ${fmt(t.planned)}</span> · ${logsLink(t.address)}</p>`;
    if (t.error) html += `<p class="err">${esc(t.error)}</p>`;
    html += `<div class="cards">${metrics || '<span class="muted">No metrics yet.</span>'}</div><div class="charts">`;
    if (t.objective === "q_learning") {
      html += lineChart({ id: "curve-return", title: "Mean return per progress report", xLabel: "episode", yLabel: "mean return", integerX: true,
        series: [{ name: "mean_return", points: t.episodes.map((e) => [e.episode, e.mean_return]) }] });
      html += lineChart({ id: "curve-epsilon", title: "Exploration rate", xLabel: "episode", yLabel: "epsilon", integerX: true, yMin: 0,
        series: [{ name: "epsilon", points: t.episodes.map((e) => [e.episode, e.epsilon]) }] });
    } else {
      // A run has a validation split when any epoch has a validation loss
      // (an accuracy of 0 is recorded as absent).
      const hasVal = t.epochs.some((e) => e.val_loss !== undefined);
      const loss = [{ name: "train_loss", points: t.epochs.map((e) => [e.epoch, e.train_loss]) }];
      if (hasVal) loss.push({ name: "val_loss", points: t.epochs.map((e) => [e.epoch, e.val_loss ?? 0]) });
      html += lineChart({ id: "curve-loss", title: "Loss per epoch", xLabel: "epoch", yLabel: "loss", integerX: true, series: loss });
      if (t.objective === "classification" && hasVal) {
        html += lineChart({ id: "curve-accuracy", title: "Validation accuracy per epoch", xLabel: "epoch", yLabel: "accuracy", integerX: true,
          series: [{ name: "val_accuracy", points: t.epochs.map((e) => [e.epoch, e.val_accuracy ?? 0]) }] });
      }
    }
    html += "</div>";
    if (t.confusion && t.confusion.length) {
      html += `<h2>Confusion matrix on the test split</h2><div class="panel">${confusionChart(t.confusion, t.labels || [])}</div>`;
    }
    if (t.layers.length) {
      html += `<h2>Model: ${fmt(t.parameters)} parameters</h2><div class="panel"><table id="layers"><thead><tr><th>#</th><th>Layer</th><th class="num">Parameters</th></tr></thead><tbody>` +
        t.layers.map((l, i) => `<tr><td>${i}</td><td>${esc(l.desc)}</td><td class="num">${l.params ? fmt(l.params) : ""}</td></tr>`).join("") +
        `</tbody></table><p class="muted">${esc(t.model)}</p></div>`;
    }
    html += detailsBlock(r);
    const open = main.querySelector("details")?.open;
    main.innerHTML = html;
    if (open) main.querySelector("details").open = true;
    return t;
  }
  let t = await load();
  let lastState = null;
  return { onTick: async (tick) => { if (t.running || t.status === "running" || tick.state !== lastState) { lastState = tick.state; t = await load(); } } };
}

async function datasetPage(r) {
  let showAll = false;
  async function load() {
    const d = await getJSON("/api/dataset?addr=" + encodeURIComponent(r.address));
    let html = `<h1>${esc(d.address)}</h1><p>${badge(d.status)}</p>
      <div class="cards"><div class="card"><div class="v" id="rows">${fmt(d.rows)}</div><div class="k">rows kept</div></div><div class="card"><div class="v" id="dropped">${fmt(d.dropped_rows)}</div><div class="k">rows dropped</div></div>
      <div class="card"><div class="v">${fmt((d.columns || []).length)}</div><div class="k">feature columns</div></div>${(d.classes || []).length ? `<div class="card"><div class="v">${d.classes.length}</div><div class="k">classes</div></div>` : ""}`;
    if (d.profile) html += Object.entries(d.profile.splits).map(([k, v]) => `<div class="card"><div class="v">${fmt(v)}</div><div class="k">${esc(k)} rows</div></div>`).join("");
    html += "</div>";
    if (d.hidden) html += `<p class="muted">${esc(d.hidden)}</p>`;
    if (d.error) html += `<p class="err">${esc(d.error)}</p>`;
    const names = Object.keys(d.schema || {}).sort();
    html += `<h2>Schema and missing values (all rows read, before cleaning)</h2><div class="panel"><table id="schema"><thead><tr><th>Column</th><th>Type</th><th class="num">Count</th><th class="num">Missing</th><th class="num">Mean</th><th class="num">Std</th><th class="num">Min</th><th class="num">Max</th></tr></thead><tbody>`;
    for (const n of names.slice(0, showAll ? names.length : 200)) {
      const s = (d.stats || {})[n] || {};
      html += `<tr data-column="${esc(n)}"><td>${esc(n)}</td><td>${esc(d.schema[n])}</td><td class="num">${fmt(s.count)}</td><td class="num missing">${fmt(s.missing)}</td><td class="num">${fmt(s.mean)}</td><td class="num">${fmt(s.std)}</td><td class="num">${fmt(s.min)}</td><td class="num">${fmt(s.max)}</td></tr>`;
    }
    html += `</tbody></table>${names.length > 200 && !showAll ? `<p class="muted">${names.length - 200} more columns</p>` : ""}</div>`;
    if (d.profile) {
      html += `<h2>Preprocessing steps</h2><div class="panel"><table id="steps"><thead><tr><th>Step</th><th class="num">Rows in</th><th class="num">Rows out</th><th class="num">Dropped</th><th>Detail</th></tr></thead><tbody>` +
        d.profile.steps.map((s) => `<tr><td>${esc(s.step)}</td><td class="num">${fmt(s.rows_in)}</td><td class="num">${fmt(s.rows_out)}</td><td class="num">${fmt(s.dropped)}</td><td>${esc(s.detail || "")}${s.dropped_by ? esc(" dropped: " + Object.entries(s.dropped_by).map(([k, v]) => `${k} ${v}`).join(", ")) : ""}</td></tr>`).join("") +
        `</tbody></table></div>`;
      const hs = d.profile.histograms || [];
      const shown = showAll ? hs : hs.slice(0, 48);
      html += `<h2>Histograms of the feature columns, as training sees them (after preprocessing)</h2><div class="hists" id="histograms">${shown.map(histogram).join("")}</div>`;
      if (hs.length > shown.length) html += `<p><button id="all">Show all ${hs.length} columns</button></p>`;
    } else if (d.computing) {
      html += `<p class="muted">Reading the dataset again for its profile…</p>`;
    }
    html += detailsBlock(r);
    main.innerHTML = html;
    document.getElementById("all")?.addEventListener("click", () => { showAll = true; load().catch(showError); });
    return d;
  }
  let d = await load();
  let lastState = null;
  return { onTick: async (tick) => { if (d.computing || tick.state !== lastState) { lastState = tick.state; d = await load(); } } };
}

async function endpointPage(r) {
  let lastScrape = -1;
  async function load() {
    const e = await getJSON("/api/endpoint?addr=" + encodeURIComponent(r.address));
    lastScrape = e.scrapes;
    const s = e.series;
    let html = `<h1>${esc(e.address)}</h1><p>${badge(e.health)} <span class="muted">${esc(e.url)}</span> · ${logsLink(e.address)}</p>`;
    if (e.detail) html += `<p class="muted">${esc(e.detail)}</p>`;
    html += `<div class="cards"><div class="card"><div class="v">${e.replicas}</div><div class="k">replicas</div></div><div class="card"><div class="v">${e.workers}</div><div class="k">workers running</div></div>
      <div class="card"><div class="v" id="requests">${fmt(e.requests_total)}</div><div class="k">predict requests</div></div><div class="card"><div class="v">${fmt(e.errors_total)}</div><div class="k">non-2xx answers</div></div>
      <div class="card"><div class="v" title="${esc(e.model_version)}">${esc((e.model_version || "–").slice(0, 19))}</div><div class="k">model version</div></div></div>`;
    html += `<div class="charts">` +
      lineChart({ id: "chart-rps", title: `Requests per second (over ${e.window_seconds} s)`, xLabel: "time", yLabel: "req/s", xTime: true, yMin: 0, series: [{ name: "rps", points: s.map((p) => [p.t, p.rps]) }] }) +
      lineChart({ id: "chart-latency", title: "Latency (ms)", xLabel: "time", yLabel: "ms", xTime: true, yMin: 0, series: [{ name: "p50", points: s.map((p) => [p.t, p.p50_ms]) }, { name: "p99", points: s.map((p) => [p.t, p.p99_ms]) }] }) +
      lineChart({ id: "chart-errors", title: "Error rate (non-2xx share)", xLabel: "time", yLabel: "share", xTime: true, yMin: 0, series: [{ name: "error_rate", points: s.map((p) => [p.t, p.error_rate]) }] }) +
      `</div><p class="muted">Read from the endpoint's /metrics every few seconds since this dashboard started (the last 10 minutes are kept).</p>`;
    html += detailsBlock(r);
    main.innerHTML = html;
  }
  await load();
  return { onTick: (t) => { if (t.scrapes !== lastScrape) return load(); } };
}

function logsPage(addr) {
  main.innerHTML = `<h1>Logs: ${link(addr)}</h1><p class="muted" id="log-status">following…</p><pre class="log" id="log"></pre>`;
  const pre = document.getElementById("log");
  const es = new EventSource("/api/logs?addr=" + encodeURIComponent(addr));
  es.addEventListener("reset", () => { pre.textContent = ""; });
  es.addEventListener("line", (ev) => {
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent += JSON.parse(ev.data).text;
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  });
  es.addEventListener("status", (ev) => { document.getElementById("log-status").textContent = JSON.parse(ev.data).message; });
  return { onTick: () => {}, close: () => es.close() };
}

// ---- routing and live updates ---------------------------------------------

async function route() {
  if (page && page.close) page.close();
  page = null;
  const h = location.hash || "#/";
  for (const a of document.querySelectorAll("header nav a")) {
    a.classList.toggle("active", a.dataset.nav === (h.startsWith("#/plan") ? "plan" : "graph"));
  }
  try {
    if (h.startsWith("#/r/")) page = await resourcePage(decodeURIComponent(h.slice(4)));
    else if (h.startsWith("#/logs/")) page = logsPage(decodeURIComponent(h.slice(7)));
    else if (h.startsWith("#/plan")) page = await planPage();
    else page = await graphPage();
  } catch (e) {
    showError(e);
  }
}

let busy = false;
function connect() {
  const es = new EventSource("/api/events");
  es.addEventListener("open", () => { live.textContent = "live"; live.classList.add("on"); });
  es.addEventListener("error", () => { live.textContent = "reconnecting…"; live.classList.remove("on"); });
  es.addEventListener("tick", async (ev) => {
    if (!page || !page.onTick || busy) return;
    busy = true;
    try { await page.onTick(JSON.parse(ev.data)); } catch (e) { /* the next tick tries again */ }
    busy = false;
  });
}

window.addEventListener("hashchange", route);
route();
connect();
