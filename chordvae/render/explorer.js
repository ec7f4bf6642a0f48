// chordvae explorer: the run's decoder and the latent plane (after common.js: data, sound, MIDI).
// Data comes from the JSON element written by chordvae/render/explorer.py.

const E = DATA.plane.extent;
const QUALITIES = DATA.colourings[0].labels;

// ---------- decoding ----------
const LAYERS = DATA.decoder.map(l => ({ ...l, w: new Float32Array(bytes(l.w)), b: new Float32Array(bytes(l.b)) }));

/** Bernoulli probabilities of the decoded event at latent point z (array of latentDim numbers). */
function forward(z) {
  let x = Float64Array.from(z);
  for (const l of LAYERS) {
    const y = new Float64Array(l.out);
    for (let o = 0; o < l.out; o++) {
      let s = l.b[o];
      const row = o * l.in;
      for (let i = 0; i < l.in; i++) s += l.w[row + i] * x[i];
      y[o] = l.relu && s < 0 ? 0 : s;
    }
    x = y;
  }
  return Array.from(x, v => 1 / (1 + Math.exp(-v)));
}

const SET_INDEX = new Map(DATA.sets.masks.map((m, i) => [m, i]));
const maskOf = pcs => pcs.reduce((m, pc) => m | (1 << pc), 0);

/** Name, symbol, root and quality of a pitch-class set, from the table Python made at export
 *  (chordvae.chords.names); a set missing there is shown by its pitch names. */
function describe(pcs) {
  const i = SET_INDEX.get(maskOf(pcs));
  if (i !== undefined) {
    const s = DATA.sets;
    return { name: s.names[i], symbol: s.symbols[i], root: s.roots[i], quality: QUALITIES[s.qualities[i]], named: true };
  }
  if (!pcs.length) return { name: "rest", symbol: "—", root: null, quality: null, named: true };
  const spelled = pcs.map(pc => DATA.pitchNames[pc]).join(" ");
  return { name: spelled + " (no name in this page)", symbol: spelled, root: pcs[0], quality: "other", named: false };
}

/** The decoded chord at (u, v): pitch classes with p >= threshold, names, and the bass
 *  dimension's choice when the model has one (kept only when it is in the chord, as in Python). */
function chordAt(u, v) {
  const z = latentAt(u, v);
  const probs = forward(z);
  const pcs = [];
  for (let pc = 0; pc < 12; pc++) if (probs[pc] >= DATA.threshold) pcs.push(pc);
  let bass = null;
  if (probs.length >= 24) {
    const b = probs.slice(12, 24).reduce((best, p, i, a) => (p > a[best] ? i : best), 0);
    if (pcs.includes(b)) bass = b;
  }
  return { u, v, z, probs, pcs, bass, ...describe(pcs) };
}

/** MIDI notes as chordvae.listen.voicing.voice: the bass (given, else the root) in C2..B2,
 *  then every pitch class in close position upwards from middle C. */
function voice(pcs, bass = null) {
  return voiceOver(pcs, bass ?? describe([...new Set(pcs)].sort((a, b) => a - b)).root);
}

// ---------- the walk ----------
const state = { cursor: [0, 0], path: [], walk: [], playing: -1, colouring: 0, hoverPoint: -1, drawing: null };

const settings = () => ({
  steps: Math.round(field("steps", 8, 2, 64)), bpm: field("bpm", DATA.render.bpm, 20, 300),
  beats: field("beats", DATA.render.beats, 0.25, 16),
});

/** The walk's decoded chords; empty decodes are left out, as `chordvae interpolate` does. */
function updateWalk() {
  state.walk = resample(state.path, settings().steps).map(([u, v]) => chordAt(u, v)).filter(c => c.pcs.length);
  const list = document.getElementById("walk-list");
  list.replaceChildren(...state.walk.map((c, i) => {
    const li = document.createElement("li");
    li.textContent = c.symbol;
    li.title = c.name;
    if (i === state.playing) li.className = "playing";
    return li;
  }));
  for (const id of ["play-walk", "download"]) document.getElementById(id).disabled = !state.walk.length;
  document.getElementById("walk-hint").hidden = state.walk.length > 0;
  draw();
}

function playChord(c) {
  if (!c.pcs.length) return;
  const ctx = audioContext();
  schedule(voice(c.pcs, c.bass), ctx.currentTime + 0.03, 1.4);
}

function stop() {
  stopAudio();
  state.playing = -1;
  updateWalk();
}

function playWalk() {
  if (!state.walk.length) return;
  stop();
  const ctx = audioContext();
  const { bpm, beats } = settings();
  const length = (beats * 60) / bpm;
  const t0 = ctx.currentTime + 0.05;
  state.walk.forEach((c, i) => {
    schedule(voice(c.pcs, c.bass), t0 + i * length, length);
    audio.timers.push(setTimeout(() => { state.playing = i; showChord(c); updateWalk(); }, 50 + i * length * 1000));
  });
  audio.timers.push(setTimeout(() => { state.playing = -1; updateWalk(); }, 50 + state.walk.length * length * 1000));
}

// ---------- MIDI ----------
/** The chords voiced and played one after another, each `beats` long: the bytes of a .mid file,
 *  as chordvae.listen.midi.to_midi writes them. */
function midiFile(chords, { bpm, beats }) {
  const notes = chords.flatMap((c, i) => voice(c.pcs, c.bass).map(p => [p, i * beats, (i + 1) * beats]));
  return midiBytes(notes, { bpm });
}

function downloadMidi() {
  if (state.walk.length) download(midiFile(state.walk, settings()), "chordvae-walk.mid", "audio/midi");
}

// ---------- drawing ----------
const canvas = document.getElementById("plane");
const g = canvas.getContext("2d");
let view = { size: 0, side: 0 };
const background = document.createElement("canvas");
const regionLabels = [];

function hexRgb(hex) { return [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16)); }

/** The decoded background (one pixel per grid cell, row 0 at the top) and labels of large regions. */
function paintBackground() {
  const { n } = DATA.background;
  const cells = new Uint16Array(bytes(DATA.background.cells));
  const conf = new Uint8Array(bytes(DATA.background.confidence));
  const colours = DATA.colourings[0].colours.map(hexRgb);
  background.width = background.height = n;
  const bg = background.getContext("2d");
  const img = bg.createImageData(n, n);
  const sums = new Map();
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      const k = r * n + c;
      const s = cells[k];
      let rgb = [236, 238, 242];
      if (s !== 0xffff) {
        const alpha = 0.13 + 0.37 * (conf[k] / 255);
        rgb = colours[DATA.sets.qualities[s]].map(x => 255 + alpha * (x - 255));
        const e = sums.get(s) || [0, 0, 0];
        sums.set(s, [e[0] + 1, e[1] + r, e[2] + c]);
      }
      const edge = (c + 1 < n && cells[k + 1] !== s) || (r + 1 < n && cells[k + n] !== s);
      const shade = edge ? 0.86 : 1;
      img.data.set([rgb[0] * shade, rgb[1] * shade, rgb[2] * shade, 255], 4 * k);
    }
  }
  bg.putImageData(img, 0, 0);
  for (const [s, [count, rs, cs]] of sums) {
    const [r, c] = [Math.round(rs / count), Math.round(cs / count)];
    if (count >= (n * n) / 300 && cells[r * n + c] === s) {
      regionLabels.push({ u: -E + ((c + 0.5) / n) * 2 * E, v: E - ((r + 0.5) / n) * 2 * E, text: DATA.sets.symbols[s] });
    }
  }
}

const toPx = (u, v) => [M.left + ((u + E) / (2 * E)) * view.side, M.top + ((E - v) / (2 * E)) * view.side];
const fromPx = (x, y) => [((x - M.left) / view.side) * 2 * E - E, E - ((y - M.top) / view.side) * 2 * E];
const radius = i => 2.5 + 13 * Math.sqrt(DATA.points.count[i] / MAX_COUNT);
const MAX_COUNT = Math.max(...DATA.points.count);
const POINT_ORDER = DATA.points.count.map((_, i) => i).sort((a, b) => DATA.points.count[b] - DATA.points.count[a]);

function resize() {
  view = fitCanvas(canvas, g);
  draw();
}

function niceStep(span) {
  const raw = span / 8;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map(m => m * p).find(s => s >= raw);
}

function draw() {
  if (!view.size) return;
  const { size, side } = view;
  g.clearRect(0, 0, size, size);
  g.imageSmoothingEnabled = false;
  g.drawImage(background, M.left, M.top, side, side);
  // axes
  g.strokeStyle = "#9aa3b2"; g.fillStyle = "#5d6675"; g.lineWidth = 1;
  drawAxes(g, side);
  g.save();
  g.beginPath(); g.rect(M.left, M.top, side, side); g.clip();
  // corpus chords
  const col = DATA.colourings[state.colouring];
  for (const i of POINT_ORDER) {
    const [x, y] = toPx(DATA.points.u[i], DATA.points.v[i]);
    g.beginPath(); g.arc(x, y, radius(i), 0, 2 * Math.PI);
    g.fillStyle = col.colours[col.of[i]] + "d9"; g.fill();
    g.lineWidth = i === state.hoverPoint ? 2.5 : 0.8; g.strokeStyle = i === state.hoverPoint ? "#1d2330" : "rgba(29,35,48,.55)"; g.stroke();
  }
  // names of the larger decoded regions
  g.font = "600 11px system-ui, sans-serif"; g.lineWidth = 3; g.strokeStyle = "rgba(255,255,255,.85)"; g.fillStyle = "#3a4252";
  for (const l of regionLabels) { const [x, y] = toPx(l.u, l.v); g.strokeText(l.text, x, y + 4); g.fillText(l.text, x, y + 4); }
  // the drawn path and the walk's chords
  const path = state.drawing || state.path;
  if (path.length) {
    g.setLineDash([5, 4]); g.strokeStyle = "#1d2330"; g.lineWidth = 1.5;
    g.beginPath(); path.forEach(([u, v], k) => { const [x, y] = toPx(u, v); k ? g.lineTo(x, y) : g.moveTo(x, y); }); g.stroke();
    g.setLineDash([]);
  }
  if (!state.drawing) {
    state.walk.forEach((c, i) => {
      const [x, y] = toPx(c.u, c.v);
      g.beginPath(); g.arc(x, y, i === state.playing ? 10 : 7, 0, 2 * Math.PI);
      g.fillStyle = i === state.playing ? "#2f6fdf" : "#1d2330"; g.fill();
      g.fillStyle = "#fff"; g.font = "600 9px system-ui, sans-serif"; g.fillText(i + 1, x, y + 3);
    });
  }
  // cursor
  const [cx, cy] = toPx(...state.cursor);
  g.strokeStyle = "#1d2330"; g.lineWidth = 1.5;
  g.beginPath(); g.arc(cx, cy, 6, 0, 2 * Math.PI); g.moveTo(cx - 11, cy); g.lineTo(cx - 6, cy); g.moveTo(cx + 6, cy); g.lineTo(cx + 11, cy);
  g.moveTo(cx, cy - 11); g.lineTo(cx, cy - 6); g.moveTo(cx, cy + 6); g.lineTo(cx, cy + 11); g.stroke();
  g.restore();
}

// ---------- readout ----------
const bars = document.getElementById("bars");
for (let pc = 0; pc < 12; pc++) {
  const d = document.createElement("div");
  d.className = "bar";
  d.innerHTML = `<span></span><i>${DATA.pitchNames[pc]}</i>`;
  bars.append(d);
}

function showChord(c) {
  const put = (id, text) => { document.getElementById(id).textContent = text; };
  put("symbol", c.symbol);
  put("name", c.pcs.length ? `${c.name}${c.quality && c.quality !== "other" ? ` · ${c.quality}` : ""}` : `no chord: no pitch class reaches p ≥ ${DATA.threshold}`);
  put("pcs", c.pcs.length ? `pitch classes ${c.pcs.map(pc => DATA.pitchNames[pc]).join(" ")} [${c.pcs.join(", ")}]` +
      (c.bass !== null ? ` · bass ${DATA.pitchNames[c.bass]}` : "") : "");
  put("where", `${DATA.run.axes[0]} ${c.u.toFixed(3)}, ${DATA.run.axes[1]} ${c.v.toFixed(3)}` +
      (DATA.run.latentDim > 2 ? `  ·  z = (${c.z.map(x => x.toFixed(2)).join(", ")})` : ""));
  const i = state.hoverPoint;
  put("corpus", i >= 0 ? `corpus chord ${DATA.sets.symbols[DATA.points.set[i]]}: ${DATA.points.count[i]} of ${DATA.points.events} events` : "");
  bars.childNodes.forEach((d, pc) => {
    d.firstChild.style.height = `${(100 * c.probs[pc]).toFixed(1)}%`;
    d.classList.toggle("on", c.probs[pc] >= DATA.threshold);
    d.title = `${DATA.pitchNames[pc]}: p = ${c.probs[pc].toFixed(3)}`;
  });
}

function pointNear(x, y) {
  let best = -1, bestD = Infinity;
  for (const i of POINT_ORDER) {
    const [px, py] = toPx(DATA.points.u[i], DATA.points.v[i]);
    const d = Math.hypot(px - x, py - y);
    if (d <= Math.max(radius(i), 4) && d < bestD) [best, bestD] = [i, d];
  }
  return best;
}

function moveCursor(u, v, point = -1) {
  state.cursor = [Math.min(E, Math.max(-E, u)), Math.min(E, Math.max(-E, v))];
  state.hoverPoint = point;
  const c = chordAt(...state.cursor);
  showChord(c);
  draw();
  return c;
}

// ---------- input ----------
bindPlane(DATA.points, c => playChord(c));
bindPlaneKeys(() => playChord(chordAt(...state.cursor)));

document.getElementById("play-walk").addEventListener("click", playWalk);
document.getElementById("stop").addEventListener("click", stop);
document.getElementById("download").addEventListener("click", downloadMidi);
document.getElementById("clear").addEventListener("click", clearWalk);
document.getElementById("steps").addEventListener("change", updateWalk);

const select = document.getElementById("colour-by");
DATA.colourings.forEach((c, i) => select.append(new Option(c.name, i)));
select.addEventListener("change", () => { state.colouring = +select.value; legend(); draw(); });

function legend() {
  const col = DATA.colourings[state.colouring];
  const used = new Set(col.of);
  document.getElementById("legend").replaceChildren(...col.labels.map((label, k) => {
    const li = document.createElement("li");
    li.innerHTML = `<i style="background:${col.colours[k]}"></i>`;
    li.append(label);
    if (!used.has(k)) li.style.opacity = 0.4;
    return li;
  }));
}

// ---------- start ----------
document.getElementById("run-info").textContent =
  `${DATA.run.dir} · epoch ${DATA.run.epoch} · latent size ${DATA.run.latentDim}` + (DATA.run.note ? ` · ${DATA.run.note}` : "");
document.getElementById("points-info").textContent =
  `${DATA.points.count.length} distinct chords of ${DATA.points.events} events, at their posterior means; size = frequency. ` +
  `Background: the decoded chord's quality (paler = less certain), outlined where the chord changes.`;
paintBackground();
legend();
new ResizeObserver(resize).observe(canvas);
updateWalk();
showChord(chordAt(0, 0));

/** What tests observe: scheduled notes, decoding, voicing, the walk and its MIDI. */
window.chordvaeTest = {
  scheduled,
  decodeAt: (u, v) => { const c = chordAt(u, v); return { pcs: c.pcs, name: c.name, symbol: c.symbol, quality: c.quality, bass: c.bass, named: c.named, probs: c.probs, z: c.z }; },
  forward,
  voice,
  setPath: points => { state.path = points.map(p => p.slice()); updateWalk(); return state.walk.length; },
  walk: () => state.walk.map(c => ({ pcs: c.pcs, bass: c.bass, symbol: c.symbol, notes: voice(c.pcs, c.bass) })),
  midi: () => Array.from(midiFile(state.walk, settings())),
  toCanvas: (u, v) => toPx(u, v),
  cursor: () => state.cursor.slice(),
  audioState: () => (audio.ctx ? audio.ctx.state : "none"),
};
