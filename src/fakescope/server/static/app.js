// fakescope page: plain JavaScript, no build step, no external asset.
// Everything a server or a file supplies is written with textContent, never as HTML.
"use strict";

const KEY_STORAGE = "fakescope-api-key";
const SVG_NS = "http://www.w3.org/2000/svg";
const VERDICT_WORDS = {
  fake: "Likely AI-generated or manipulated",
  uncertain: "Uncertain: worth a human look",
  real: "No AI traces found",
  error: "Could not be checked",
};
// Evidence groups shown first, in this order; the rest follow alphabetically.
const EVIDENCE_ORDER = ["rule", "c2pa", "exif", "xmp", "text_chunks", "jpeg", "file", "detector"];
// Shown in their own panels, so the evidence panel only summarises them.
const EVIDENCE_ELSEWHERE = new Set(["video", "localization"]);
// Lists whose items are markers worth flagging.
const FLAGGED_LISTS = new Set(["generator", "editing"]);

const state = { results: [], selected: null, objectUrls: [], reportRequest: 0 };

function $(id) {
  return document.getElementById(id);
}

function el(tag, attributes = {}, text = null) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== null) node.textContent = text;
  return node;
}

function svg(tag, attributes = {}, text = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

function setStatus(message, problem = false) {
  const status = $("status");
  status.textContent = message;
  status.classList.toggle("problem", problem);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// -- talking to the API -------------------------------------------------------------------

function apiHeaders() {
  const key = sessionStorage.getItem(KEY_STORAGE);
  return key ? { "X-API-Key": key } : {};
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { ...apiHeaders(), ...(options.headers || {}) },
  });
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const body = await response.json();
      if (typeof body.detail === "string") detail = body.detail;
    } catch (_ignored) {
      // not JSON: keep the status text
    }
    const error = new Error(`${detail} (HTTP ${response.status})`);
    error.status = response.status;
    throw error;
  }
  return response;
}

async function blobUrl(path) {
  const response = await api(path);
  const url = URL.createObjectURL(await response.blob());
  state.objectUrls.push(url);
  return url;
}

async function pollJob(url) {
  for (;;) {
    await sleep(800);
    const job = await (await api(url)).json();
    setStatus(`Checking… ${job.completed} of ${job.total} files done.`);
    if (job.status === "done") return job;
  }
}

async function scanFiles(fileList) {
  const files = Array.from(fileList || []);
  if (!files.length) return;
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  setStatus(`Checking ${files.length} ${files.length === 1 ? "file" : "files"}…`);
  try {
    const response = await api("/v1/scan", { method: "POST", body: form });
    let body = await response.json();
    if (response.status === 202) body = await pollJob(body.status_url);
    const added = addResults(body.results);
    const errors = body.results.filter((result) => result.error).length;
    setStatus(
      `${body.results.length} checked` + (errors ? `, ${errors} could not be read.` : "."),
    );
    if (added.length) await select(added[0], true);
  } catch (error) {
    if (error.status === 401) {
      $("api-key-input").closest("details").open = true;
      setStatus("This server needs an API key: enter it under “API key” and try again.", true);
      $("api-key-input").focus();
    } else {
      setStatus(`The files could not be checked: ${error.message}`, true);
    }
  }
}

// -- the list of checked files --------------------------------------------------------------

function verdictKey(result) {
  return result.error ? "error" : result.verdict || "error";
}

function addResults(results) {
  const list = $("results");
  const added = [];
  for (const result of results) {
    const index = state.results.push(result) - 1;
    const item = el("li");
    const button = el("button", { type: "button", "data-index": String(index) });
    button.append(el("span", { class: "name" }, result.path));
    const key = verdictKey(result);
    const chipText = key === "error" ? "error" : `${key} ${formatPercent(result.score)}`;
    button.append(el("span", { class: `chip ${key}` }, chipText));
    button.addEventListener("click", () => select(result, true));
    item.append(button);
    list.prepend(item);
    result.button = button;
    added.push(result);
  }
  return added;
}

function formatPercent(score) {
  if (typeof score !== "number") return "–";
  return `${(score * 100).toFixed(score >= 0.995 || score < 0.01 ? 1 : 0)} %`;
}

async function select(result, moveFocus) {
  for (const other of state.results) other.button?.setAttribute("aria-current", "false");
  result.button?.setAttribute("aria-current", "true");
  state.selected = result;
  // The images on screen still use the previous URLs: release them once new ones are shown.
  const stale = state.objectUrls;
  state.objectUrls = [];
  const request = ++state.reportRequest;
  const details = $("details");
  details.hidden = false;
  renderVerdict(result, null);
  if (!result.sha256) {
    await renderOverlay(null);
    renderEvidence(result.evidence || {});
    for (const url of stale) URL.revokeObjectURL(url);
    return;
  }
  try {
    const report = await (await api(`/v1/results/${result.sha256}/report`)).json();
    if (request !== state.reportRequest) return; // another file was picked meanwhile
    renderVerdict(report.result, report);
    renderEvidence(report.result.evidence || {});
    renderTimeline(report);
    await Promise.all([renderOverlay(report), renderSpectrum(report)]);
  } catch (error) {
    setStatus(`The details could not be loaded: ${error.message}`, true);
  } finally {
    for (const url of stale) URL.revokeObjectURL(url);
  }
  if (moveFocus) details.focus();
}

// -- verdict --------------------------------------------------------------------------------

function renderVerdict(result, report) {
  $("file-name").textContent = result.path;
  const key = verdictKey(result);
  const verdict = $("verdict");
  verdict.className = `verdict ${key}`;
  verdict.textContent = VERDICT_WORDS[key];
  const meter = $("score-meter");
  if (report?.thresholds) {
    meter.low = report.thresholds.review_threshold;
    meter.high = report.thresholds.threshold;
  }
  const hasScore = typeof result.score === "number";
  meter.value = hasScore ? result.score : 0;
  meter.hidden = !hasScore;
  $("score-value").textContent = hasScore ? formatPercent(result.score) : "no score";
  const explanation = $("explanation");
  explanation.replaceChildren();
  const sentences = report ? report.explanation : result.error ? [result.error] : [];
  for (const sentence of sentences) explanation.append(el("li", {}, sentence));
  const body = $("detectors-table").querySelector("tbody");
  body.replaceChildren();
  for (const [name, score] of Object.entries(result.detectors || {})) {
    const row = el("tr");
    row.append(el("td", {}, name), el("td", {}, formatPercent(score)));
    body.append(row);
  }
  $("detectors-table").hidden = !Object.keys(result.detectors || {}).length;
  const model = report ? ` · model ${report.model}` : "";
  $("sha").textContent = result.sha256 ? `SHA-256 ${result.sha256}${model}` : "";
}

// -- overlay: before/after slider -------------------------------------------------------------

const NO_OVERLAY = {
  image:
    "No map for this file: the detectors score the whole image, and the original is not " +
    "kept on the server (or it runs no localizer), so edited regions cannot be shown.",
  video: "Videos are scored frame by frame: see the timeline below.",
  error: "The file could not be decoded, so there is nothing to show.",
};

async function renderOverlay(report) {
  const choice = $("overlay-choice");
  const caption = $("overlay-caption");
  $("compare").hidden = true;
  $("compare-controls").hidden = true;
  choice.hidden = true;
  choice.querySelectorAll("label, input").forEach((node) => node.remove());
  const overlays = report?.overlays || [];
  if (!overlays.length) {
    $("compare-before").removeAttribute("src");
    $("compare-after").removeAttribute("src");
    const key = !report || report.result.error ? "error" : report.media;
    caption.textContent = NO_OVERLAY[key];
    return;
  }
  const original = report.original_url ? await blobUrl(report.original_url) : null;
  if (overlays.length > 1) {
    overlays.forEach((overlay, index) => {
      const id = `overlay-${overlay.kind}`;
      const input = el("input", { type: "radio", name: "overlay", id, value: String(index) });
      input.checked = index === 0;
      input.addEventListener("change", () => showOverlay(overlays[index], original));
      choice.append(input, el("label", { for: id }, overlayName(overlay.kind)));
    });
    choice.hidden = false;
  }
  await showOverlay(overlays[0], original);
}

const OVERLAY_NAMES = {
  localization: "Localization map",
  edits: "Edited regions",
  residual: "Residual view",
};

function overlayName(kind) {
  return OVERLAY_NAMES[kind] || kind;
}

async function showOverlay(overlay, original) {
  const after = $("compare-after");
  const before = $("compare-before");
  const overlayUrl = await blobUrl(overlay.url);
  before.src = original || overlayUrl;
  after.src = overlayUrl;
  after.alt =
    overlay.kind === "residual"
      ? "Residual view of the image"
      : "Heat map over the image: red marks suspicious regions";
  $("compare-label").textContent = overlayName(overlay.kind).toLowerCase();
  $("overlay-caption").textContent = overlay.caption;
  $("compare").hidden = false;
  $("compare-controls").hidden = !original;
  updateSlider();
}

function updateSlider() {
  const position = Number($("compare-slider").value);
  // The overlay covers the right-hand part, from the divider on.
  $("compare-after-clip").style.clipPath = `inset(0 0 0 ${position}%)`;
  $("compare-divider").style.left = `${position}%`;
  $("compare-slider").setAttribute(
    "aria-valuetext",
    `${100 - position} % of the width shows the ${$("compare-label").textContent}`,
  );
}

// -- spectrum plot ----------------------------------------------------------------------------

const PLOT = { width: 600, height: 260, left: 52, right: 12, top: 14, bottom: 40 };

function scale(domainLow, domainHigh, rangeLow, rangeHigh) {
  const span = domainHigh - domainLow || 1;
  return (value) => rangeLow + ((value - domainLow) / span) * (rangeHigh - rangeLow);
}

function plotFrame(container, title, description) {
  const id = container.id;
  const root = svg("svg", {
    viewBox: `0 0 ${PLOT.width} ${PLOT.height}`,
    role: "img",
    "aria-labelledby": `${id}-title ${id}-desc`,
  });
  root.append(svg("title", { id: `${id}-title` }, title), svg("desc", { id: `${id}-desc` }, description));
  container.replaceChildren(root);
  return root;
}

function axes(root, x, y, xTicks, yTicks, xLabel, yLabel, formatX, formatY) {
  const bottom = PLOT.height - PLOT.bottom;
  root.append(
    svg("line", { x1: PLOT.left, y1: bottom, x2: PLOT.width - PLOT.right, y2: bottom, stroke: "#4a4a4a" }),
    svg("line", { x1: PLOT.left, y1: PLOT.top, x2: PLOT.left, y2: bottom, stroke: "#4a4a4a" }),
  );
  for (const tick of xTicks) {
    root.append(
      svg("line", { x1: x(tick), y1: bottom, x2: x(tick), y2: bottom + 4, stroke: "#4a4a4a" }),
      svg("text", { x: x(tick), y: bottom + 16, "text-anchor": "middle" }, formatX(tick)),
    );
  }
  for (const tick of yTicks) {
    root.append(
      svg("line", { x1: PLOT.left - 4, y1: y(tick), x2: PLOT.left, y2: y(tick), stroke: "#4a4a4a" }),
      svg("text", { x: PLOT.left - 7, y: y(tick) + 4, "text-anchor": "end" }, formatY(tick)),
    );
  }
  root.append(
    svg("text", { x: (PLOT.left + PLOT.width - PLOT.right) / 2, y: PLOT.height - 6, "text-anchor": "middle" }, xLabel),
    svg("text", { x: 12, y: (PLOT.top + bottom) / 2, transform: `rotate(-90 12 ${(PLOT.top + bottom) / 2})`, "text-anchor": "middle" }, yLabel),
  );
}

function mean(values) {
  return values.reduce((sum, value) => sum + value, 0) / Math.max(values.length, 1);
}

async function renderSpectrum(report) {
  const panel = $("spectrum-panel");
  panel.hidden = !report.spectrum_url;
  if (!report.spectrum_url) return;
  const spectrum = await (await api(report.spectrum_url)).json();
  const { frequency, log_magnitude: level, bands } = spectrum;
  const low = Math.min(...level);
  const high = Math.max(...level);
  const x = scale(0, 1, PLOT.left, PLOT.width - PLOT.right);
  const y = scale(low, high, PLOT.height - PLOT.bottom, PLOT.top);
  const bandMeans = Object.entries(bands).map(([name, [start, end]]) => {
    const inside = level.filter((_, i) => frequency[i] > start && frequency[i] <= end);
    return `${name} ${mean(inside).toFixed(2)}`;
  });
  const description =
    `Azimuthally averaged log spectrum over ${spectrum.n_rings} frequency rings, from ` +
    `${level[0].toFixed(2)} at the lowest frequency to ${level[level.length - 1].toFixed(2)} ` +
    `at the highest. Mean per band: ${bandMeans.join(", ")}.`;
  const root = plotFrame($("spectrum-plot"), "Frequency spectrum of the image", description);
  const shades = ["#eef3fb", "#f6f7f9", "#fbefe6"];
  Object.entries(bands).forEach(([name, [start, end]], index) => {
    root.append(
      svg("rect", { x: x(start), y: PLOT.top, width: x(end) - x(start), height: PLOT.height - PLOT.bottom - PLOT.top, fill: shades[index % 3] }),
      svg("text", { x: (x(start) + x(end)) / 2, y: PLOT.top + 12, "text-anchor": "middle" }, `${name} band`),
    );
  });
  const points = frequency.map((f, i) => `${x(f).toFixed(1)},${y(level[i]).toFixed(1)}`).join(" ");
  root.append(svg("polyline", { points, fill: "none", stroke: "#0b57d0", "stroke-width": 2 }));
  const yTicks = [0, 1, 2, 3].map((i) => low + ((high - low) * i) / 3);
  axes(root, x, y, [0, 0.25, 0.5, 0.75, 1], yTicks, "frequency (fraction of the highest)", "log magnitude", (t) => String(t), (t) => t.toFixed(1));
}

// -- video timeline ---------------------------------------------------------------------------

// A round step (1, 2 or 5 times a power of ten) near the one asked for, for axis ticks.
function niceStep(rough) {
  const power = 10 ** Math.floor(Math.log10(rough || 1));
  return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= rough) || power * 10;
}

function renderTimeline(report) {
  const video = report.result.evidence?.video;
  const panel = $("timeline-panel");
  const frames = Array.isArray(video?.frames) ? video.frames.filter((f) => typeof f.score === "number") : [];
  panel.hidden = !frames.length;
  if (!frames.length) return;
  const segments = Array.isArray(video.segments) ? video.segments : [];
  const duration = video.duration_s || Math.max(...frames.map((f) => f.time_s), ...segments.map((s) => s.end_s || 0)) || 1;
  const threshold = typeof video.threshold === "object" ? video.threshold?.frame_threshold ?? video.threshold?.threshold : video.threshold;
  const x = scale(0, duration, PLOT.left, PLOT.width - PLOT.right);
  const y = scale(0, 1, PLOT.height - PLOT.bottom, PLOT.top);
  const description =
    `${frames.length} sampled frames over ${duration.toFixed(1)} s; ` +
    `${segments.length} suspicious ${segments.length === 1 ? "segment" : "segments"}` +
    (segments.length ? `: ${segments.map((s) => `${s.start_s.toFixed(1)} to ${s.end_s.toFixed(1)} s`).join(", ")}.` : ".");
  const root = plotFrame($("timeline-plot"), "Score of each sampled frame over time", description);
  for (const segment of segments) {
    root.append(svg("rect", { x: x(segment.start_s), y: PLOT.top, width: Math.max(x(segment.end_s) - x(segment.start_s), 2), height: PLOT.height - PLOT.bottom - PLOT.top, fill: "#fde7e7", stroke: "#a50e0e", "stroke-dasharray": "3 2" }));
  }
  if (typeof threshold === "number") {
    root.append(
      svg("line", { x1: PLOT.left, x2: PLOT.width - PLOT.right, y1: y(threshold), y2: y(threshold), stroke: "#a50e0e", "stroke-dasharray": "6 4" }),
      svg("text", { x: PLOT.width - PLOT.right - 4, y: y(threshold) - 4, "text-anchor": "end" }, `threshold ${threshold.toFixed(2)}`),
    );
  }
  const points = frames.map((f) => `${x(f.time_s).toFixed(1)},${y(f.score).toFixed(1)}`).join(" ");
  root.append(svg("polyline", { points, fill: "none", stroke: "#0b57d0", "stroke-width": 2 }));
  for (const frame of frames) {
    root.append(svg("circle", { cx: x(frame.time_s), cy: y(frame.score), r: 2.5, fill: "#0b57d0" }));
  }
  const step = niceStep(duration / 5);
  const timeTicks = [];
  for (let t = 0; t <= duration + 1e-9; t += step) timeTicks.push(t);
  const digits = step < 1 ? 1 : 0;
  axes(root, x, y, timeTicks, [0, 0.25, 0.5, 0.75, 1], "time (s)", "frame score", (t) => t.toFixed(digits), (t) => t.toFixed(2));
  const list = $("segments");
  list.replaceChildren();
  for (const segment of segments) {
    const peak = typeof segment.peak_score === "number" ? `, peak score ${formatPercent(segment.peak_score)}` : "";
    list.append(el("li", {}, `Suspicious: ${segment.start_s.toFixed(1)} s to ${segment.end_s.toFixed(1)} s${peak}`));
  }
  if (!segments.length) list.append(el("li", {}, "No suspicious segment."));
}

// -- evidence ---------------------------------------------------------------------------------

function humanize(key) {
  return String(key).replaceAll("_", " ");
}

function isScalar(value) {
  return value === null || ["string", "number", "boolean"].includes(typeof value);
}

function scalarText(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : String(Number(value.toFixed(4)));
  const text = String(value);
  return text.length > 300 ? `${text.slice(0, 299)}…` : text;
}

function renderValue(value, key, depth) {
  if (isScalar(value)) return document.createTextNode(scalarText(value));
  if (Array.isArray(value)) {
    if (!value.length) return document.createTextNode("none");
    if (value.every(isScalar)) return document.createTextNode(value.map(scalarText).join(", "));
    if (value.length > 12 || depth > 3) return document.createTextNode(`${value.length} entries`);
    const list = el("ul");
    for (const item of value) {
      const entry = el("li");
      entry.append(renderValue(item, key, depth + 1));
      if (FLAGGED_LISTS.has(key)) entry.classList.add("flag");
      list.append(entry);
    }
    return list;
  }
  if (depth > 3) return document.createTextNode(`${Object.keys(value).length} fields`);
  const list = el("dl");
  for (const [name, item] of Object.entries(value)) {
    const term = el("dt", {}, humanize(name));
    const detail = el("dd");
    detail.append(renderValue(item, name, depth + 1));
    if (FLAGGED_LISTS.has(name) && Array.isArray(item) && item.length) term.classList.add("flag");
    list.append(term, detail);
  }
  return list;
}

function renderEvidence(evidence) {
  const container = $("evidence");
  container.replaceChildren();
  const general = {};
  const groups = [];
  for (const [key, value] of Object.entries(evidence)) {
    if (value && typeof value === "object" && !Array.isArray(value)) groups.push(key);
    else general[key] = value;
  }
  groups.sort((a, b) => {
    const rank = (key) => (EVIDENCE_ORDER.includes(key) ? EVIDENCE_ORDER.indexOf(key) : EVIDENCE_ORDER.length);
    return rank(a) - rank(b) || a.localeCompare(b);
  });
  if (Object.keys(general).length) groups.unshift(null);
  if (!groups.length) {
    container.append(el("p", {}, "No evidence for this file."));
    return;
  }
  for (const key of groups) {
    let value = key === null ? general : evidence[key];
    if (EVIDENCE_ELSEWHERE.has(key)) {
      // Long per-frame lists and maps live in their own panels; keep the summary here.
      value = Object.fromEntries(Object.entries(value).filter(([, v]) => isScalar(v) || (Array.isArray(v) && v.length <= 12)));
    }
    const group = el("details");
    group.open = ["rule", "c2pa", "exif", null].includes(key);
    group.append(el("summary", {}, key === null ? "general" : humanize(key)));
    group.append(renderValue(value, key, 0));
    container.append(group);
  }
}

// -- wiring -----------------------------------------------------------------------------------

function init() {
  const keyInput = $("api-key-input");
  keyInput.value = sessionStorage.getItem(KEY_STORAGE) || "";
  keyInput.addEventListener("change", () => {
    if (keyInput.value) sessionStorage.setItem(KEY_STORAGE, keyInput.value);
    else sessionStorage.removeItem(KEY_STORAGE);
  });
  const input = $("file-input");
  input.addEventListener("change", () => {
    scanFiles(input.files);
    input.value = "";
  });
  const zone = $("drop-zone");
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  }
  for (const type of ["dragleave", "drop"]) {
    zone.addEventListener(type, () => zone.classList.remove("dragging"));
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    scanFiles(event.dataTransfer.files);
  });
  // A file dropped next to the zone must not make the browser navigate away from the page.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
  $("compare-slider").addEventListener("input", updateSlider);
}

document.addEventListener("DOMContentLoaded", init);
