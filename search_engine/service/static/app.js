// audio2vec search page: upload or record a clip, show the answer of POST /query (the object of
// one `audio2vec query --json` line), draw the clip's spectrogram, play matched passages.
// No libraries, no build step: everything here runs offline.
"use strict";

const $ = (sel) => document.querySelector(sel);
const token = new URLSearchParams(location.search).get("token");
const els = {
  input: $("#clip-input"), drop: $("#drop"), record: $("#record"), k: $("#k"), where: $("#where"), status: $("#status"),
  verdict: $("#verdict"), table: $("#results"), body: $("#results tbody"), player: $("#player"),
  nowPlaying: $("#now-playing"), info: $("#index-info"), picture: $("#picture"), canvas: $("#spectrogram"),
  region: $("#region"), timeline: $("#timeline-passage"), caption: $("#picture-caption"),
};
const state = { clip: null, answer: null, selected: -1, files: new Map(), recorder: null, busy: false };

function api(path) {
  if (!token) return path;
  return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
}

async function getJSON(path, options) {
  const r = await fetch(api(path), options);
  let body;
  try { body = await r.json(); } catch (e) { body = { error: `${r.status} ${r.statusText}` }; }
  if (!r.ok) throw new Error(body.error || `${r.status} ${r.statusText}`);
  return body;
}

function mode() { return $("#mode-similar").checked ? "similar" : "match"; }
function k() { return Math.max(1, Math.min(100, parseInt(els.k.value, 10) || 10)); }
// the filter box: "genre=Drums; duration<2" -> "&where=genre%3DDrums&where=duration%3C2"
function filters() {
  return els.where.value.split(";").map((w) => w.trim()).filter(Boolean).map((w) => "&where=" + encodeURIComponent(w)).join("");
}
function clock(s) {
  if (s === null || s === undefined) return "–";
  const sign = s < 0 ? "-" : "", a = Math.abs(s);  // a clip may start before the recording does
  const m = Math.floor(a / 60), r = a - 60 * m;
  return `${sign}${m}:${r.toFixed(2).padStart(5, "0")}`;
}
function baseName(p) { return p.split(/[\\/]/).pop(); }
function setStatus(text, isError) { els.status.textContent = text; els.status.classList.toggle("error", !!isError); }

async function refreshInfo() {
  try {
    const h = await getJSON("/health");
    els.info.textContent = `${h.files} recordings · ${h.segments} segments · model ${h.model}`;
  } catch (e) { els.info.textContent = `index unavailable: ${e.message}`; }
}

// ---- asking ----------------------------------------------------------------------------------
async function ask(file) {
  if (!file) return;
  state.clip = { file, name: file.name || "clip", duration: null, samples: null, rate: 16000 };
  state.busy = true;
  setStatus(`Searching for ${state.clip.name} (${mode()})…`);
  const picture = drawClip(file);  // in parallel with the query
  const form = new FormData();
  form.append("clip", file, state.clip.name);
  const t0 = performance.now();
  try {
    const answer = await getJSON(`/query?k=${k()}&mode=${mode()}${filters()}`, { method: "POST", body: form });
    answer.mode = mode();
    await show(answer, `${Math.round(performance.now() - t0)} ms`);
  } catch (e) {
    showError(e.message);
  } finally {
    state.busy = false;
  }
  await picture;
  markRegion();
}

async function moreLikeThis(path) {
  state.clip = null;
  els.picture.hidden = true;
  setStatus(`Recordings that sound like ${baseName(path)}…`);
  const t0 = performance.now();
  try {
    const answer = await getJSON(`/similar?path=${encodeURIComponent(path)}&k=${k()}${filters()}`);
    answer.mode = "similar";
    await show(answer, `${Math.round(performance.now() - t0)} ms`);
  } catch (e) { showError(e.message); }
}

function showError(message) {
  setStatus(message, true);
  els.verdict.hidden = true;
  els.table.hidden = true;
  state.answer = null;
}

async function show(answer, took) {
  state.answer = answer;
  const results = answer.results || [];
  await Promise.all(results.map((r) => fileOf(r.path).catch(() => null)));
  const v = els.verdict;
  v.hidden = false;
  if (answer.mode === "match") {
    const top = results[0];
    if (answer.matched && top) {
      v.className = "found";
      v.textContent = `Found: ${baseName(top.path)} at ${clock(top.offset_s)}${tempo(top)} (${sure(top.confidence)}distance ${top.distance.toFixed(3)})`;
    } else {
      v.className = "not-found";
      v.textContent = results.length
        ? "Not found — this clip is in no indexed recording. The nearest recordings are listed below, none close enough to count as a match."
        : "Not found — the index is empty.";
    }
  } else {
    v.className = "similar";
    v.textContent = results.length ? `Sounds most like: ${baseName(results[0].path)}` : "Nothing to compare with: the index is empty.";
  }
  renderResults(results, answer.mode);
  setStatus(`${results.length} results for ${baseName(answer.query)} · ${answer.mode} · ${took}`);
  select(results.length ? 0 : -1);
}

// the calibrated claim confidence (a probability, 0-1) as the page shows it
function percent(p) { return `${Math.round(100 * p)} %`; }
function sure(p) { return p == null ? "" : `confidence ${percent(p)}, `; }
// a clip that plays faster or slower than the recording (match mode "speed": 1.05 = 5 % faster)
// (only for a claimed match: the best alignment with another recording has no meaningful speed)
function sped(r) { return r.matched === true && r.speed != null && Math.abs(r.speed - 1) >= 0.005; }
function tempo(r) { return sped(r) ? `, played ${Math.round(100 * Math.abs(r.speed - 1))} % ${r.speed > 1 ? "faster" : "slower"}` : ""; }

function renderResults(results, how) {
  els.body.replaceChildren();
  results.forEach((r, i) => {
    const tr = document.createElement("tr");
    tr.dataset.index = i;
    const found = (r.matched === true ? '<span class="yes">matched</span>' : r.matched === false ? '<span class="no">no</span>' : '<span class="na">similar</span>')
      + (r.confidence == null ? "" : ` <span class="confidence" title="calibrated probability that this recording holds the clip">${percent(r.confidence)}</span>`);
    tr.innerHTML = `<td class="num">${r.rank}</td><td class="num distance">${r.distance.toFixed(4)}</td><td class="found">${found}</td>`
      + `<td class="num offset">${clock(r.offset_s)}${sped(r) ? ` ×${r.speed.toFixed(2)}` : ""}</td><td class="path"></td>`
      + `<td class="actions"><button type="button" class="play" title="Play the passage (Enter)">▶ Play</button>`
      + `<button type="button" class="more" title="More like this (l)">More like this</button></td>`;
    tr.querySelector(".path").textContent = r.path;
    tr.querySelector(".play").addEventListener("click", () => { select(i); play(i); });
    tr.querySelector(".more").addEventListener("click", () => moreLikeThis(r.path));
    tr.addEventListener("click", (ev) => { if (ev.target.tagName !== "BUTTON") select(i); });
    els.body.appendChild(tr);
  });
  els.table.hidden = results.length === 0;
}

function select(i) {
  const rows = els.body.querySelectorAll("tr");
  if (!rows.length) { state.selected = -1; markRegion(); return; }
  i = Math.max(0, Math.min(rows.length - 1, i));
  rows.forEach((tr, j) => tr.classList.toggle("selected", j === i));
  state.selected = i;
  rows[i].scrollIntoView({ block: "nearest" });
  markRegion();
}

// catalog row (id, duration) of a result's path, from GET /files?under=PATH
async function fileOf(path) {
  if (state.files.has(path)) return state.files.get(path);
  const page = await getJSON(`/files?under=${encodeURIComponent(path)}&limit=5`);
  const row = page.files.find((f) => f.path === path);
  if (!row) throw new Error(`${path} is no longer in the index`);
  state.files.set(path, row);
  return row;
}

function passage(i) {
  const r = state.answer.results[i];
  const row = state.files.get(r.path);
  const start = Math.max(0, r.offset_s || 0);
  const length = (state.clip && state.clip.duration ? state.clip.duration : 5) * (r.speed || 1);  // recording seconds
  const end = Math.min(row ? row.duration_s : start + length, start + length);
  return { r, row, start, end: Math.max(end, start + 0.1) };
}

async function play(i) {
  if (!state.answer || i < 0 || i >= state.answer.results.length) return;
  const { r, start, end } = passage(i);
  let row;
  try { row = await fileOf(r.path); } catch (e) { setStatus(e.message, true); return; }
  els.player.src = api(`/files/${row.id}/audio?start=${start.toFixed(3)}&end=${end.toFixed(3)}`);
  els.nowPlaying.textContent = `▶ ${baseName(r.path)} ${clock(start)}–${clock(end)}`;
  try { await els.player.play(); } catch (e) { /* autoplay refused: the controls are there */ }
}

// ---- spectrogram -------------------------------------------------------------------------------
function fft(re, im) {  // in-place radix-2, length a power of two
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) { [re[i], re[j]] = [re[j], re[i]]; [im[i], im[j]] = [im[j], im[i]]; }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const ang = -2 * Math.PI / len, wr = Math.cos(ang), wi = Math.sin(ang);
    for (let i = 0; i < n; i += len) {
      let cr = 1, ci = 0;
      for (let j = 0; j < len / 2; j++) {
        const a = i + j, b = a + len / 2;
        const xr = re[b] * cr - im[b] * ci, xi = re[b] * ci + im[b] * cr;
        re[b] = re[a] - xr; im[b] = im[a] - xi; re[a] += xr; im[a] += xi;
        const t = cr * wr - ci * wi; ci = cr * wi + ci * wr; cr = t;
      }
    }
  }
}

function colour(v) {  // 0..1 -> dark blue, magenta, orange, pale yellow
  const stops = [[0, 0, 4], [60, 15, 110], [180, 55, 120], [250, 140, 40], [252, 250, 190]];
  const x = Math.max(0, Math.min(0.9999, v)) * (stops.length - 1), i = Math.floor(x), f = x - i;
  return stops[i].map((c, j) => c + f * (stops[i + 1][j] - c));
}

async function drawClip(file) {
  const rate = 16000;
  try {
    const buf = await file.arrayBuffer();
    const ctx = new OfflineAudioContext(1, 1, rate);
    const audio = await ctx.decodeAudioData(buf);
    const y = new Float32Array(audio.length);
    for (let c = 0; c < audio.numberOfChannels; c++) {
      const ch = audio.getChannelData(c);
      for (let i = 0; i < y.length; i++) y[i] += ch[i] / audio.numberOfChannels;
    }
    if (state.clip && state.clip.file === file) { state.clip.duration = y.length / rate; state.clip.samples = y.length; }
    paint(y, rate);
    els.picture.hidden = false;
  } catch (e) {
    els.picture.hidden = true;  // the browser cannot decode it; the server may still have answered
  }
}

function paint(y, rate) {
  const W = els.canvas.width, H = els.canvas.height, n = 512, bins = n / 2;
  const hop = Math.max(64, Math.ceil(Math.max(1, y.length - n) / W));
  const cols = Math.max(1, Math.floor((y.length - n) / hop) + 1);
  const win = new Float32Array(n).map((_, i) => 0.5 - 0.5 * Math.cos(2 * Math.PI * i / n));
  const db = new Float32Array(cols * bins);
  let top = -Infinity;
  const re = new Float64Array(n), im = new Float64Array(n);
  for (let c = 0; c < cols; c++) {
    for (let i = 0; i < n; i++) { re[i] = (y[c * hop + i] || 0) * win[i]; im[i] = 0; }
    fft(re, im);
    for (let b = 0; b < bins; b++) {
      const v = 10 * Math.log10(re[b] * re[b] + im[b] * im[b] + 1e-10);
      db[c * bins + b] = v;
      if (v > top) top = v;
    }
  }
  const g = els.canvas.getContext("2d"), img = g.createImageData(W, H);
  const fmin = 30, fmax = rate / 2;  // log-frequency rows
  for (let row = 0; row < H; row++) {
    const f = fmin * Math.pow(fmax / fmin, (H - 1 - row) / (H - 1));
    const b = Math.min(bins - 1, Math.round(f / (rate / n)));
    for (let x = 0; x < W; x++) {
      const c = Math.min(cols - 1, Math.floor(x * cols / W));
      const [r, gg, bb] = colour((db[c * bins + b] - top + 80) / 80);
      const o = 4 * (row * W + x);
      img.data[o] = r; img.data[o + 1] = gg; img.data[o + 2] = bb; img.data[o + 3] = 255;
    }
  }
  g.putImageData(img, 0, 0);
}

// the part of the clip aligned with the selected recording, and where that is in the recording
function markRegion() {
  const region = els.region;
  if (!state.clip || !state.clip.duration || !state.answer || state.selected < 0 || !state.answer.results.length) {
    region.hidden = true; els.timeline.style.width = "0"; els.caption.textContent = ""; return;
  }
  const r = state.answer.results[state.selected];
  const row = state.files.get(r.path);
  const dur = state.clip.duration, off = Math.max(0, r.offset_s || 0);
  const recDur = row ? row.duration_s : off + dur;
  const speed = r.speed || 1;  // recording seconds per clip second
  const a = 0, b = Math.max(0, Math.min(dur, (recDur - off) / speed));
  region.hidden = false;
  region.classList.toggle("weak", r.matched !== true);
  region.style.left = `${(100 * a) / dur}%`;
  region.style.width = `${(100 * (b - a)) / dur}%`;
  els.timeline.style.left = `${(100 * off) / recDur}%`;
  els.timeline.style.width = `${(100 * Math.min(dur * speed, recDur - off)) / recDur}%`;
  const what = state.answer.mode === "match"
    ? (r.matched ? "matched" : "nearest, not a match") : "nearest window (similar)";
  els.caption.textContent = `${state.clip.name}, ${clock(dur)} · marked: ${what} — ${baseName(r.path)} ${clock(off)}–${clock(off + (b - a) * speed)} of ${clock(recDur)} (bar below: where in the recording)`;
}

// ---- recording ---------------------------------------------------------------------------------
async function toggleRecording() {
  if (state.recorder) { state.recorder.stop(); return; }
  if (!navigator.mediaDevices || !window.MediaRecorder) { setStatus("This browser cannot record here (a microphone needs https or localhost).", true); return; }
  let stream;
  try { stream = await navigator.mediaDevices.getUserMedia({ audio: true }); } catch (e) { setStatus(`No microphone: ${e.message}`, true); return; }
  const rec = new MediaRecorder(stream), parts = [];
  rec.ondataavailable = (ev) => ev.data.size && parts.push(ev.data);
  rec.onstop = () => {
    stream.getTracks().forEach((t) => t.stop());
    state.recorder = null;
    els.record.setAttribute("aria-pressed", "false");
    els.record.textContent = "● Record";
    const type = rec.mimeType || "audio/webm";
    const ext = type.includes("ogg") ? "ogg" : type.includes("mp4") ? "m4a" : "webm";
    ask(new File(parts, `recording.${ext}`, { type }));
  };
  rec.start();
  state.recorder = rec;
  els.record.setAttribute("aria-pressed", "true");
  els.record.textContent = "■ Stop (r)";
  setStatus("Recording… press r or Stop to search with it.");
}

// ---- wiring ------------------------------------------------------------------------------------
els.input.addEventListener("change", () => { const f = els.input.files[0]; if (f) ask(f); });
els.record.addEventListener("click", toggleRecording);
for (const id of ["#mode-match", "#mode-similar"]) $(id).addEventListener("change", () => state.clip && ask(state.clip.file));
els.where.addEventListener("change", () => state.clip && ask(state.clip.file));  // Enter or leaving the box asks again
["dragenter", "dragover"].forEach((t) => document.addEventListener(t, (ev) => { ev.preventDefault(); els.drop.classList.add("over"); }));
["dragleave", "drop"].forEach((t) => document.addEventListener(t, (ev) => { ev.preventDefault(); els.drop.classList.remove("over"); }));
document.addEventListener("drop", (ev) => { const f = ev.dataTransfer && ev.dataTransfer.files[0]; if (f) ask(f); });

document.addEventListener("keydown", (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const typing = ev.target.matches && ev.target.matches("input[type=number], input[type=text]");
  if (typing && ev.key !== "Escape") return;
  const n = state.answer ? state.answer.results.length : 0;
  const onButton = ev.target.tagName === "BUTTON";
  switch (ev.key) {
    case "o": case "/": els.input.click(); break;
    case "r": toggleRecording(); break;
    case "m": $("#mode-match").checked = true; if (state.clip) ask(state.clip.file); break;
    case "s": $("#mode-similar").checked = true; if (state.clip) ask(state.clip.file); break;
    case "j": case "ArrowDown": if (n) select(state.selected + 1); break;
    case "k": case "ArrowUp": if (n) select(state.selected - 1); break;
    case "Enter": if (onButton) return; play(state.selected); break;
    case "p": play(state.selected); break;
    case "l": if (n && state.selected >= 0) moreLikeThis(state.answer.results[state.selected].path); break;
    case "Escape": els.player.pause(); break;
    default: return;
  }
  ev.preventDefault();
});

refreshInfo();
setInterval(refreshInfo, 15000);  // an index run may be adding files
