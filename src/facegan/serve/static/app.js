// facegan page: plain JavaScript, no build step, nothing loaded from outside this server.
"use strict";

const STEPS = 32; // frames in the interpolation strip (the slider walks them with no further request)
const PADDING = 2; // pixels between faces in a /api/faces grid
const LARGE = 512; // pixels of the enlarged face and its download

const $ = (id) => document.getElementById(id);
const state = {
  seed: 0, n: 16, truncation: 1, scaling: "pixelated", zoom: 128,
  native: 64, a: null, b: null, pickedEnds: false, strip: null, gridRequest: 0, stripRequest: 0,
  face: null, attributes: [], attr: {},
};

function query(params) {
  return new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)])).toString();
}

function smooth() { return state.scaling === "smooth"; }

// A conditional model's attributes: "name=value,..." for the chosen ones ("any" ones are left out).
function attrText() {
  return Object.entries(state.attr).filter(([, v]) => v !== "").map(([k, v]) => `${k}=${v}`).join(",");
}

function withAttr(params) { return attrText() ? { ...params, attr: attrText() } : params; }

function setStatus(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

async function fetchImage(url) {
  const response = await fetch(url);
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      detail = Array.isArray(body.detail) ? body.detail.map((d) => d.msg).join("; ") : body.detail;
    } catch (_) { /* not JSON: keep the status line */ }
    throw new Error(detail);
  }
  return response.blob();
}

function faceUrl(face, extra = {}) {
  return "/api/face?" + query(withAttr({ seed: face.seed, index: face.index, truncation: state.truncation, ...extra }));
}

function describe(face) { return `seed ${face.seed} · face ${face.index}`; }

// URL hash <-> state, so any grid can be bookmarked and reproduced.
function readHash() {
  const h = new URLSearchParams(location.hash.slice(1));
  const int = (name, lo, hi) => {
    const v = Number(h.get(name));
    return h.has(name) && Number.isInteger(v) && v >= lo && v <= hi ? v : null;
  };
  state.seed = int("seed", 0, 4294967295) ?? state.seed;
  state.n = int("n", 1, 64) ?? state.n;
  const t = Number(h.get("t"));
  if (h.has("t") && t >= 0 && t <= 1) state.truncation = t;
  if (h.get("scaling") === "smooth" || h.get("scaling") === "pixelated") state.scaling = h.get("scaling");
  state.attr = {};
  for (const part of (h.get("attr") || "").split(",")) {
    const [name, value] = part.split("=");
    if (name && value !== undefined) state.attr[name] = value;
  }
}

function writeHash() {
  const hash = "#" + query(withAttr({ seed: state.seed, n: state.n, t: state.truncation, scaling: state.scaling }));
  history.replaceState(null, "", hash);
}

function syncControls() {
  $("seed").value = state.seed;
  $("count").value = state.n;
  $("truncation").value = state.truncation;
  $("truncation-value").textContent = state.truncation.toFixed(2);
  $("scaling").value = state.scaling;
  for (const select of $("attributes").querySelectorAll("select")) select.value = state.attr[select.name] ?? "";
  for (const id of ["grid-wrap", "interp"]) {
    const el = id === "interp" ? document.querySelector(".interp-row") : $(id);
    el.classList.toggle("smooth", smooth());
    el.classList.toggle("pixelated", !smooth());
  }
}

// The grid ------------------------------------------------------------------------------------------------
function layout(n) {
  const cols = Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  const s = state.native;
  return { cols, rows, width: cols * (s + PADDING) + PADDING, height: rows * (s + PADDING) + PADDING };
}

function buildCells() {
  const { cols, width, height } = layout(state.n);
  const s = state.native;
  const cells = $("cells");
  cells.replaceChildren();
  for (let i = 0; i < state.n; i++) {
    const left = PADDING + (i % cols) * (s + PADDING);
    const top = PADDING + Math.floor(i / cols) * (s + PADDING);
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.index = String(i);
    button.title = `face ${i}`;
    button.setAttribute("aria-label", `face ${i} of seed ${state.seed}`);
    button.style.left = `${(100 * left) / width}%`;
    button.style.top = `${(100 * top) / height}%`;
    button.style.width = `${(100 * s) / width}%`;
    button.style.height = `${(100 * s) / height}%`;
    button.addEventListener("click", () => openFace({ seed: state.seed, index: i }));
    cells.append(button);
  }
  markEnds();
}

function markEnds() {
  for (const button of $("cells").children) {
    const i = Number(button.dataset.index);
    const is = (end) => end && end.seed === state.seed && end.index === i;
    button.classList.toggle("end-a", is(state.a));
    button.classList.toggle("end-b", is(state.b));
  }
}

function sizeGrid() {
  const { width } = layout(state.n);
  $("grid").style.width = `${Math.round((width * state.zoom) / state.native)}px`;
}

async function loadGrid() {
  const request = ++state.gridRequest;
  const params = withAttr({ seed: state.seed, n: state.n, truncation: state.truncation });
  const url = "/api/faces?" + query(params);
  document.body.dataset.gridState = "loading";
  setStatus("generating…");
  writeHash();
  if (!state.pickedEnds) {
    state.a = { seed: state.seed, index: 0 };
    state.b = state.n > 1 ? { seed: state.seed, index: 1 } : { seed: (state.seed + 1) % 4294967296, index: 0 };
    loadStrip();
  }
  try {
    const blob = await fetchImage(url);
    if (request !== state.gridRequest) return; // a newer grid was asked for meanwhile
    const img = $("grid");
    const old = img.src;
    img.src = URL.createObjectURL(blob);
    await img.decode();
    if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    img.dataset.seed = String(state.seed);
    sizeGrid();
    buildCells();
    $("grid-download").href = url + "&" + query({ size: Math.min(256, state.native * 4), smooth: smooth() });
    $("grid-download").download = `facegan-seed-${state.seed}-n${state.n}.png`;
    setStatus(`seed ${state.seed} · ${state.n} face${state.n > 1 ? "s" : ""} · truncation ${state.truncation.toFixed(2)}`);
    document.body.dataset.gridState = "ready";
  } catch (error) {
    if (request !== state.gridRequest) return;
    setStatus(`could not make faces: ${error.message}`, true);
    document.body.dataset.gridState = "error";
  }
}

// One face, large ---------------------------------------------------------------------------------------
function openFace(face) {
  state.face = face;
  $("face-large").src = faceUrl(face, { size: LARGE, smooth: smooth() });
  $("face-label").textContent = `${describe(face)} · truncation ${state.truncation.toFixed(2)}`;
  const name = `facegan-seed-${face.seed}-face-${face.index}`;
  $("face-download").href = faceUrl(face, { size: LARGE, smooth: smooth() });
  $("face-download").download = `${name}-${LARGE}px.png`;
  $("face-download-native").href = faceUrl(face);
  $("face-download-native").download = `${name}.png`;
  $("face-dialog").showModal();
}

function useAs(end) {
  state[end] = { ...state.face };
  state.pickedEnds = true;
  $("face-dialog").close();
  markEnds();
  loadStrip();
}

// Interpolation -----------------------------------------------------------------------------------------
function interpParams(format) {
  return withAttr({
    seed_a: state.a.seed, index_a: state.a.index, seed_b: state.b.seed, index_b: state.b.index,
    truncation: state.truncation, format,
  });
}

async function loadStrip() {
  const request = ++state.stripRequest;
  document.body.dataset.stripState = "loading";
  $("end-a").src = faceUrl(state.a);
  $("end-b").src = faceUrl(state.b);
  $("end-a-label").textContent = `A: ${describe(state.a)}`;
  $("end-b-label").textContent = `B: ${describe(state.b)}`;
  $("interp-gif").href = "/api/interpolate?" + query({ ...interpParams("gif"), steps: STEPS, size: 128, smooth: smooth() });
  $("interp-strip").href = "/api/interpolate?" + query({ ...interpParams("png"), steps: STEPS });
  try {
    const blob = await fetchImage("/api/interpolate?" + query({ ...interpParams("png"), steps: STEPS }));
    const bitmap = await createImageBitmap(blob);
    if (request !== state.stripRequest) return;
    state.strip = bitmap;
    drawFrame();
    document.body.dataset.stripState = "ready";
  } catch (error) {
    if (request !== state.stripRequest) return;
    setStatus(`could not interpolate: ${error.message}`, true);
    document.body.dataset.stripState = "error";
  }
}

function drawFrame() {
  const k = Number($("interp-slider").value);
  $("interp-t").textContent = `t = ${(k / (STEPS - 1)).toFixed(2)}`;
  if (!state.strip) return;
  const s = state.strip.height; // frames are square, side by side, no gaps
  const canvas = $("interp-frame");
  canvas.width = s;
  canvas.height = s;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(state.strip, k * s, 0, s, s, 0, 0, s, s);
  canvas.dataset.frame = String(k);
}

// Model info --------------------------------------------------------------------------------------------
function row(list, name, value) {
  if (value === undefined || value === null || value === "") return;
  const dt = document.createElement("dt");
  dt.textContent = name;
  const dd = document.createElement("dd");
  dd.textContent = String(value);
  list.append(dt, dd);
}

function flatten(value, prefix = "", out = []) {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.push([prefix, Array.isArray(value) ? JSON.stringify(value) : value]);
  }
  return out;
}

function showInfo(info) {
  const m = info.model;
  $("model-summary").textContent =
    `${m.family} · ${m.resolution} px · step ${info.step.toLocaleString()} · ${info.device}`;
  const list = $("info-list");
  list.replaceChildren();
  row(list, "Family", m.family);
  row(list, "Image", `${m.resolution}×${m.resolution} × ${m.channels} channel${m.channels > 1 ? "s" : ""}`);
  row(list, "Latent", `${m.nz}-d ${m.latent}`);
  row(list, "Width", `G ${m.ngf} · D ${m.ndf}`);
  row(list, "Step", info.step.toLocaleString());
  row(list, "Images seen", info.images_seen.toLocaleString());
  const d = info.dataset;
  row(list, "Dataset", d.path);
  if (d.available) row(list, "Data", `${d.count.toLocaleString()} images · ${d.source}`);
  row(list, "Loss", info.config.train.loss);
  row(list, "Checkpoint", info.checkpoint.split("/").slice(-3).join("/"));
  row(list, "Device", info.device);
  row(list, "Model id", info.model_id);
  // the newest evaluation's headline numbers, one per registered metric (swd_10k, ...)
  for (const [label, value] of Object.entries(info.headline || {})) {
    row(list, label, typeof value === "number" ? String(Number(value.toPrecision(5))) : "n/a");
  }
  const metrics = $("metrics");
  const names = Object.keys(info.metrics);
  if (names.length) {
    metrics.replaceChildren();
    for (const name of names) {
      const table = document.createElement("table");
      const caption = document.createElement("caption");
      caption.textContent = `eval/${name}.json`;
      caption.className = "muted";
      table.append(caption);
      // the numbers only: not the file's format fields, seeds or timings
      const shown = flatten(info.metrics[name]).filter(([key, value]) => key === "error"
        || (typeof value === "number" && !/^(format_version|seed|elapsed_s\b)/.test(key)));
      for (const [key, value] of shown.slice(0, 40)) {
        const tr = table.insertRow();
        tr.insertCell().textContent = key;
        tr.insertCell().textContent = typeof value === "number" ? Number(value.toPrecision(5)) : String(value);
      }
      metrics.append(table);
    }
  }
  $("config").textContent = JSON.stringify(info.config, null, 2);
}

// One select per attribute of a conditional model (facegan train --condition): "any", or one of its values.
function buildAttributes(attributes) {
  const box = $("attributes");
  box.replaceChildren();
  box.hidden = attributes.length === 0;
  for (const { name, values } of attributes) {
    const label = document.createElement("label");
    label.textContent = `${name} `;
    const select = document.createElement("select");
    select.name = name;
    select.dataset.attribute = name;
    for (const value of ["", ...values.map(String)]) {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = value === "" ? "any" : value;
      select.append(option);
    }
    select.value = state.attr[name] ?? "";
    select.addEventListener("change", () => {
      state.attr[name] = select.value;
      loadGrid();
      if (state.pickedEnds) loadStrip();
    });
    label.append(select);
    box.append(label);
  }
  for (const name of Object.keys(state.attr)) {  // a bookmarked attribute this model does not take
    if (!attributes.some((a) => a.name === name)) delete state.attr[name];
  }
}

// Wiring ------------------------------------------------------------------------------------------------
function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

function randomSeed() { return crypto.getRandomValues(new Uint32Array(1))[0]; }

async function main() {
  readHash();
  syncControls();
  try {
    const response = await fetch("/api/info");
    const info = await response.json();
    state.native = info.model.resolution;
    showInfo(info);
    buildAttributes(info.attributes || []);
  } catch (error) {
    setStatus(`could not read the model info: ${error.message}`, true);
  }

  $("new-faces").addEventListener("click", () => { state.seed = randomSeed(); syncControls(); loadGrid(); });
  $("seed").addEventListener("change", () => {
    const v = Number($("seed").value);
    if (Number.isInteger(v) && v >= 0 && v <= 4294967295) { state.seed = v; loadGrid(); }
    else { setStatus("the seed is a whole number from 0 to 4294967295", true); syncControls(); }
  });
  $("count").addEventListener("change", () => {
    const v = Math.round(Number($("count").value));
    state.n = Math.min(64, Math.max(1, Number.isFinite(v) ? v : 16));
    syncControls();
    loadGrid();
  });
  const retruncate = debounce(() => { loadGrid(); if (state.pickedEnds) loadStrip(); }, 150);
  $("truncation").addEventListener("input", () => {
    state.truncation = Number($("truncation").value);
    $("truncation-value").textContent = state.truncation.toFixed(2);
    retruncate();
  });
  $("scaling").addEventListener("change", () => {
    state.scaling = $("scaling").value;
    syncControls();
    writeHash();
    drawFrame();
    $("interp-gif").href = "/api/interpolate?" + query({ ...interpParams("gif"), steps: STEPS, size: 128, smooth: smooth() });
  });
  $("zoom").addEventListener("change", () => { state.zoom = Number($("zoom").value); sizeGrid(); });
  $("interp-slider").max = String(STEPS - 1);
  $("interp-slider").addEventListener("input", drawFrame);
  $("swap-ends").addEventListener("click", () => {
    [state.a, state.b] = [state.b, state.a];
    state.pickedEnds = true;
    markEnds();
    loadStrip();
  });
  $("use-a").addEventListener("click", () => useAs("a"));
  $("use-b").addEventListener("click", () => useAs("b"));
  $("close-dialog").addEventListener("click", () => $("face-dialog").close());
  // a click on the backdrop (outside the dialog's box) closes it, as Escape does
  $("face-dialog").addEventListener("click", (event) => {
    const box = $("face-dialog").getBoundingClientRect();
    const inside = event.clientX >= box.left && event.clientX <= box.right
      && event.clientY >= box.top && event.clientY <= box.bottom;
    if (!inside) $("face-dialog").close();
  });
  window.addEventListener("hashchange", () => { readHash(); syncControls(); loadGrid(); });

  state.zoom = Number($("zoom").value);
  await loadGrid();
}

main();
