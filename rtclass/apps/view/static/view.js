// rtclass live view: reads the state the view server builds from the pipeline's published topics
// (Server-Sent Events on /events), draws the probe, the raster, the health counters and the unit
// table; a unit's classifier input (waveform, ACG, 3D-ACG) on click (/api/unit/<id>).
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const SHANK_MARGIN_UM = 150; // shank shown beyond the outermost units
const RATIO_SHOWN_MAX = 100; // confidence ratios above this are shown as ">100"
const view = {
  types: [], colours: [], windowS: 10, silentAfterS: 3,
  units: [], probe: null, status: {}, fs: 30000, latest: 0,
  spikes: [],           // [sample, unit, code] of the last window
  sortKey: "cell_type", sortUp: true, selected: null, plots: {},
};

// ------------------------------------------------------------------------------ health counters
// [status key, label, format, level(value, status) -> "" | "warn" | "bad"]
const nonzero = (level) => (v) => (v ? level : "");
const TILES = [
  ["data_s", "data processed, s", (v) => v.toFixed(1), () => ""],
  ["realtime_factor", "x real time", (v) => v.toFixed(1), (v, s) => (s.data_s > 2 && v < 1 ? "bad" : "")],
  ["spikes_per_s", "spikes / s", (v) => v.toFixed(0), () => ""],
  ["units", "units", (v) => v, (v, s) => (s.data_s > 60 && !v ? "bad" : "")],
  ["labelled_units", "units labelled", (v) => v, () => ""],
  ["samples_dropped", "samples dropped", (v) => v, nonzero("bad")],
  ["gaps", "gaps", (v) => v, nonzero("bad")],
  ["restarts", "source restarts", (v) => v, nonzero("warn")],
  ["malformed", "malformed messages", (v) => v, nonzero("bad")],
  ["stalls", "sender stalls (nothing lost)", (v) => v, nonzero("warn")],
  ["chunk_p50_us", "per chunk p50, µs", (v) => v.toFixed(0), () => ""],
  ["chunk_p99_us", "per chunk p99, µs", (v) => v.toFixed(0), () => ""],
  ["publish_lag_p50_ms", "spike → publish p50, ms", (v) => v.toFixed(2), () => ""],
  ["publish_lag_p99_ms", "spike → publish p99, ms", (v) => v.toFixed(2), (v) => (v > 5 ? "warn" : "")],
  ["labeller_rounds", "labelling rounds", (v) => v, () => ""],
  ["labeller_round_ms", "last labelling round, ms", (v) => v.toFixed(1), () => ""],
  ["labeller_late", "labelling rounds late (cores busy)", (v) => v, nonzero("warn")],
  ["labeller_failed", "labelling rounds failed", (v) => v, nonzero("bad")],
  ["discovery_rounds", "discovery rounds", (v) => v, () => ""],
  ["discovery_skipped", "discovery skipped (cores busy)", (v) => v, nonzero("warn")],
  ["discovery_failed", "discovery failed", (v) => v, nonzero("bad")],
];

function buildTiles() {
  const box = document.getElementById("health");
  for (const [key, name] of TILES) {
    const t = document.createElement("div");
    t.className = "tile";
    t.id = "tile-" + key;
    t.innerHTML = `<div class="value" id="counter-${key}">–</div><div class="name">${name}</div>`;
    box.appendChild(t);
  }
  const t = document.createElement("div");
  t.className = "tile";
  t.id = "tile-view";
  t.innerHTML = `<div class="value" id="counter-view_messages">0</div><div class="name">messages received by the view</div>`;
  box.appendChild(t);
}

function showHealth(u) {
  const s = u.status || {};
  for (const [key, , fmt, level] of TILES) {
    if (!(key in s)) continue;
    document.getElementById("counter-" + key).textContent = fmt(s[key]);
    document.getElementById("tile-" + key).className = "tile " + level(s[key], s);
  }
  const v = u.view;
  document.getElementById("counter-view_messages").textContent = v.messages;
  document.getElementById("tile-view").className = "tile " + (v.malformed ? "bad" : "");
  document.getElementById("tile-view").title = v.malformed ? `${v.malformed} malformed: ${v.last_error}` : v.address;
  const state = document.getElementById("state");
  if (u.silent) {
    state.textContent = u.status_age_s == null ? `waiting for the pipeline at ${v.address}` :
      `no status from the pipeline for ${u.status_age_s.toFixed(0)} s`;
    state.className = "badge bad";
  } else if (s.waiting_s > 0) {
    state.textContent = `waiting for data from ${s.source_name} for ${s.waiting_s.toFixed(0)} s`;
    state.className = "badge warn";
  } else {
    state.textContent = s.detecting ? "detecting" : "estimating noise";
    state.className = "badge " + (s.detecting ? "ok" : "warn");
  }
  document.getElementById("source").textContent = s.source_name ? `source ${s.source_name}` : "";
}

// ------------------------------------------------------------------------------ probe
function drawProbe() {
  const svg = document.getElementById("probe");
  const p = view.probe;
  if (!p) return;
  document.getElementById("probe-name").textContent = p.name;
  const pos = p.positions_um;
  const w = p.contact_width_um || 12;
  const xs = pos.map((q) => q[0]), ys = pos.map((q) => q[1]);
  const x0 = Math.min(...xs) - w, x1 = Math.max(...xs) + w;
  // the stretch of shank that holds units (and a margin), to scale; the whole shank before any unit
  const live = view.units.filter((u) => u.merged_into == null).map((u) => u.y_um);
  const yMin = Math.min(...ys) - w, yMax = Math.max(...ys) + w;
  const y0 = live.length ? Math.max(yMin, Math.min(...live) - SHANK_MARGIN_UM) : yMin;
  const y1 = live.length ? Math.min(yMax, Math.max(...live) + SHANK_MARGIN_UM) : yMax;
  view.probeSpan = [y0, y1];
  document.getElementById("probe-span").textContent =
    `${y0.toFixed(0)}-${y1.toFixed(0)} µm of ${yMin.toFixed(0)}-${yMax.toFixed(0)} µm`;
  const margin = 160; // room beside the shank for unit marks and the depth scale
  svg.setAttribute("viewBox", `${x0 - margin} ${-y1 - w} ${x1 - x0 + 2 * margin} ${y1 - y0 + 2 * w}`);
  svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
  svg.replaceChildren();
  const shank = document.createElementNS(SVG_NS, "rect");
  Object.entries({ x: x0, y: -y1, width: x1 - x0, height: y1 - y0, class: "shank" }).forEach(([k, v]) => shank.setAttribute(k, v));
  svg.appendChild(shank);
  const contacts = document.createElementNS(SVG_NS, "g");
  for (const [x, y] of pos) {
    if (y < y0 || y > y1) continue;
    const r = document.createElementNS(SVG_NS, "rect");
    Object.entries({ x: x - w / 2, y: -y - w / 2, width: w, height: w, class: "contact" }).forEach(([k, v]) => r.setAttribute(k, v));
    contacts.appendChild(r);
  }
  svg.appendChild(contacts);
  const step = y1 - y0 > 1500 ? 500 : 100;
  for (let d = Math.ceil(y0 / step) * step; d <= y1; d += step) {
    const t = document.createElementNS(SVG_NS, "text");
    t.setAttribute("x", x0 - margin + 4);
    t.setAttribute("y", -d);
    t.textContent = `${d} µm`;
    svg.appendChild(t);
  }
  const marks = document.createElementNS(SVG_NS, "g");
  marks.id = "unit-marks";
  svg.appendChild(marks);
  drawUnitMarks();
}

function drawUnitMarks() {
  const marks = document.getElementById("unit-marks");
  if (!marks) return;
  marks.replaceChildren();
  for (const u of view.units) {
    if (u.merged_into != null) continue;
    const c = document.createElementNS(SVG_NS, "circle");
    const r = Math.min(45, 8 + 4 * Math.sqrt(u.firing_rate_hz || 0));
    const labelled = u.cell_type_code > 0;
    const opacity = labelled ? 0.35 + 0.65 * Math.min(1, (u.confidence || 0) / 4) : 0.35;
    Object.entries({ cx: u.x_um, cy: -u.y_um, r, fill: view.colours[u.cell_type_code] || "#999",
      "fill-opacity": opacity, class: "unit" + (u.id === view.selected ? " selected" : ""),
      "data-unit": u.id, "data-type": u.cell_type }).forEach(([k, v]) => c.setAttribute(k, v));
    const title = document.createElementNS(SVG_NS, "title");
    title.textContent = `unit ${u.id}: ${u.cell_type} (confidence ratio ${ratio(u.confidence)}), ` +
      `${(u.firing_rate_hz || 0).toFixed(1)} Hz, channel ${u.peak_channel}`;
    c.appendChild(title);
    c.addEventListener("click", () => select(u.id));
    marks.appendChild(c);
  }
}

function spanChanged() {
  // redraw the shank when a unit appears outside the stretch shown
  const ys = view.units.filter((u) => u.merged_into == null).map((u) => u.y_um);
  if (!view.probeSpan || !ys.length) return true;
  return Math.min(...ys) < view.probeSpan[0] + SHANK_MARGIN_UM / 2 || Math.max(...ys) > view.probeSpan[1] - SHANK_MARGIN_UM / 2;
}

const ratio = (v) => (v > RATIO_SHOWN_MAX ? `>${RATIO_SHOWN_MAX}` : (v || 0).toFixed(1));

// ------------------------------------------------------------------------------ raster
function rasterRows() {
  // units grouped by cell type (wire code order), deepest first within a type
  const live = view.units.filter((u) => u.merged_into == null);
  live.sort((a, b) => (a.cell_type_code - b.cell_type_code) || (b.y_um - a.y_um));
  const row = new Map(live.map((u, i) => [u.id, i]));
  return { live, row };
}

function drawRaster() {
  const canvas = document.getElementById("raster");
  const dpr = window.devicePixelRatio || 1;
  const W = canvas.clientWidth, H = canvas.clientHeight;
  if (canvas.width !== W * dpr) { canvas.width = W * dpr; canvas.height = H * dpr; }
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, W, H);
  const { live, row } = rasterRows();
  const left = 70, n = Math.max(live.length, 1), rowH = (H - 20) / n;
  const t1 = view.latest / view.fs, t0 = t1 - view.windowS;
  const x = (sample) => left + ((sample / view.fs - t0) / view.windowS) * (W - left - 4);
  // cell-type bands and labels
  let start = 0;
  for (let i = 1; i <= live.length; i++) {
    if (i === live.length || live[i].cell_type_code !== live[start].cell_type_code) {
      const code = live[start].cell_type_code;
      g.fillStyle = view.colours[code];
      g.globalAlpha = 0.08;
      g.fillRect(left, start * rowH, W - left, (i - start) * rowH);
      g.globalAlpha = 1;
      g.font = "12px system-ui";
      g.fillText(view.types[code], 4, (start + (i - start) / 2) * rowH + 4);
      start = i;
    }
  }
  for (const [sample, unit, code] of view.spikes) {
    const r = row.get(unit);
    if (r === undefined) continue;
    g.fillStyle = view.colours[code];
    g.fillRect(x(sample), r * rowH, 1.5, Math.max(1, rowH - 1));
  }
  g.fillStyle = "#8a939e";
  g.font = "11px system-ui";
  for (let s = Math.ceil(t0); s <= t1; s++) g.fillText(`${s} s`, x(s * view.fs) - 8, H - 4);
}

// ------------------------------------------------------------------------------ unit table
function drawTable() {
  const body = document.querySelector("#units tbody");
  const key = view.sortKey, dir = view.sortUp ? 1 : -1;
  const rows = [...view.units].sort((a, b) => {
    const p = a[key], q = b[key];
    return (typeof p === "string" ? p.localeCompare(q) : (p ?? -1) - (q ?? -1)) * dir || a.id - b.id;
  });
  body.replaceChildren();
  for (const u of rows) {
    const tr = document.createElement("tr");
    tr.dataset.unit = u.id;
    tr.className = (u.merged_into != null ? "merged " : "") + (u.id === view.selected ? "selected" : "");
    const type = u.merged_into != null ? `merged → ${u.merged_into}` : u.cell_type;
    tr.innerHTML = `<td>${u.id}</td><td class="type" style="color:${view.colours[u.cell_type_code]}">${type}</td>` +
      `<td>${ratio(u.confidence)}</td><td>${(u.firing_rate_hz || 0).toFixed(1)}</td>` +
      `<td>${u.spike_count}</td><td>${(u.mean_amplitude_uv || 0).toFixed(0)}</td><td>${u.peak_channel}</td>` +
      `<td>${u.y_um.toFixed(0)}</td>`;
    tr.addEventListener("click", () => select(u.id));
    body.appendChild(tr);
  }
  const live = view.units.filter((u) => u.merged_into == null).length;
  document.getElementById("unit-count").textContent = `${live} live`;
  document.querySelectorAll("#units th").forEach((th) => {
    th.className = th.dataset.key === key ? "sorted" + (view.sortUp ? " up" : "") : "";
  });
}

function sortBy(key) {
  view.sortUp = view.sortKey === key ? !view.sortUp : true;
  view.sortKey = key;
  drawTable();
}

// ------------------------------------------------------------------------------ unit detail
async function select(id) {
  view.selected = id;
  drawTable();
  drawUnitMarks();
  const panel = document.getElementById("detail");
  panel.hidden = false;
  document.getElementById("detail-id").textContent = id;
  const res = await fetch(`/api/unit/${id}`);
  if (!res.ok) {
    document.getElementById("detail-label").textContent = "no features yet (a unit is labelled after 100 spikes)";
    return;
  }
  const d = await res.json();
  const u = d.unit || {};
  document.getElementById("detail-label").textContent =
    `${u.cell_type || ""} · ${(u.firing_rate_hz || 0).toFixed(1)} Hz · channel ${u.peak_channel}`;
  const colour = view.colours[u.cell_type_code || 0];
  const t = d.waveform.map((_, i) => (i - 30) / 30); // ms from the peak (C4: 30 kHz, peak at sample 30)
  linePlot("waveform", "waveform-plot", [t, d.waveform], colour, "ms", false);
  const lags = d.lags_ms.slice(1), acg = d.acg_mean.slice(1);
  linePlot("acg", "acg-plot", [lags, acg], colour, "lag, ms", true);
  drawAcg3d(d.acg3d);
}

function linePlot(name, el, data, colour, xlabel, logX) {
  const box = document.getElementById(el);
  if (view.plots[name]) view.plots[name].destroy();
  view.plots[name] = new uPlot({
    width: Math.max(240, box.clientWidth), height: 160, legend: { show: false }, cursor: { show: false },
    scales: { x: { time: false, distr: logX ? 3 : 1 } },
    axes: [{ label: xlabel, stroke: "#8a939e", grid: { stroke: "#252b33" } }, { stroke: "#8a939e", grid: { stroke: "#252b33" } }],
    series: [{}, { stroke: colour, width: 2 }],
  }, data, box);
}

function drawAcg3d(rows) {
  const canvas = document.getElementById("acg3d");
  const g = canvas.getContext("2d");
  const nr = rows.length, nl = rows[0].length;
  const max = Math.max(1e-9, ...rows.flat());
  const img = g.createImageData(nl, nr);
  rows.forEach((r, i) => r.forEach((v, j) => {
    const k = ((nr - 1 - i) * nl + j) * 4, a = Math.min(1, v / max);
    img.data[k] = 255 * a; img.data[k + 1] = 200 * a * a; img.data[k + 2] = 80 * a; img.data[k + 3] = 255;
  }));
  canvas.width = nl; canvas.height = nr;
  g.putImageData(img, 0, 0);
}

// ------------------------------------------------------------------------------ updates
function apply(u) {
  view.status = u.status || {};
  view.fs = u.sample_rate_hz;
  view.latest = Math.max(view.latest, u.latest_sample);
  if (u.probe) { view.probe = u.probe; drawProbe(); }
  if (u.units) {
    view.units = u.units;
    drawTable();
    if (view.probe && spanChanged()) drawProbe(); else drawUnitMarks();
  }
  if (u.spikes.length) {
    view.spikes.push(...u.spikes);
    const from = view.latest - view.windowS * view.fs;
    let i = 0;
    while (i < view.spikes.length && view.spikes[i][0] < from) i++;
    if (i) view.spikes.splice(0, i);
  }
  showHealth(u);
  requestAnimationFrame(drawRaster);
}

async function main() {
  const c = await (await fetch("/api/constants")).json();
  view.types = c.cell_types; view.colours = c.colours; view.windowS = c.raster_window_s; view.silentAfterS = c.silent_after_s;
  document.getElementById("raster-window").textContent = view.windowS;
  document.getElementById("legend").innerHTML = view.types.map((t, i) => `<span><i style="background:${view.colours[i]}"></i>${t}</span>`).join("");
  document.querySelectorAll("#units th").forEach((th) => th.addEventListener("click", () => sortBy(th.dataset.key)));
  buildTiles();
  const events = new EventSource("/events");
  events.onmessage = (e) => apply(JSON.parse(e.data));
  events.onerror = () => {
    const state = document.getElementById("state");
    state.textContent = "the view server is not answering";
    state.className = "badge bad";
  };
  window.addEventListener("resize", () => { drawRaster(); });
}

main();
