// chordvae progression explorer (after common.js): the run's sequence encoder and greedy decoder,
// chord names from the table Python exported, the corpus's windows on the plane, playing,
// morphs as MIDI and the typed-progression box.
// Data comes from the JSON element written by chordvae/render/progressions.py.

const E = DATA.plane.extent;
const CFG = DATA.model.config;
const T = DATA.run.window;
const BPB = DATA.run.beatsPerBar;
const D = CFG.keys;
const W = Object.fromEntries(Object.entries(DATA.model.weights).map(([k, v]) => [k, new Float32Array(bytes(v))]));

// ---------- the model ----------
const sigmoid = x => 1 / (1 + Math.exp(-x));

/** y = W x + b for W (out, in) row-major: a Float64Array of `out` numbers. */
function affine(w, b, x) {
  const n = x.length, out = b.length, y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = b[o];
    const row = o * n;
    for (let i = 0; i < n; i++) s += w[row + i] * x[i];
    y[o] = s;
  }
  return y;
}

/** One step of torch.nn.GRU (gates r, z, n in that order) with the weights `name.*_l0{suffix}`. */
function gruStep(name, suffix, x, h) {
  const gi = affine(W[`${name}.weight_ih_l0${suffix}`], W[`${name}.bias_ih_l0${suffix}`], x);
  const gh = affine(W[`${name}.weight_hh_l0${suffix}`], W[`${name}.bias_hh_l0${suffix}`], h);
  const H = h.length, out = new Float64Array(H);
  for (let j = 0; j < H; j++) {
    const r = sigmoid(gi[j] + gh[j]);
    const z = sigmoid(gi[H + j] + gh[H + j]);
    const n = Math.tanh(gi[2 * H + j] + r * gh[2 * H + j]);
    out[j] = (1 - z) * n + z * h[j];
  }
  return out;
}

const concat = (a, b) => { const c = new Float64Array(a.length + b.length); c.set(a); c.set(b, a.length); return c; };

/** A frame (D zeros and ones) from the decoder's context `ctx`, each key its more likely value:
 *  the MADE key by key (chordvae.sequence.MADE.sample, greedy) or independent Bernoulli keys. */
function frameGreedy(ctx) {
  const x = new Float64Array(D);
  if (CFG.output === "bernoulli") {
    const logits = affine(W["decoder.frame.linear.weight"], W["decoder.frame.linear.bias"], ctx);
    for (let i = 0; i < D; i++) x[i] = logits[i] > 0 ? 1 : 0;
    return x;
  }
  const M = CFG.made_hidden;
  const pre = affine(W["decoder.frame.context_hidden.weight"], W["decoder.frame.context_hidden.bias"], ctx);
  const out = affine(W["decoder.frame.context_out.weight"], W["decoder.frame.context_out.bias"], ctx);
  const wIn = W["decoder.frame.w_in"], wOut = W["decoder.frame.w_out"], wDirect = W["decoder.frame.w_direct"];
  for (let i = 0; i < D; i++) {
    let logit = out[i];
    for (let j = 0; j < M; j++) if (pre[j] > 0) logit += pre[j] * wOut[i * M + j];
    for (let k = 0; k < i; k++) logit += x[k] * wDirect[i * D + k];
    x[i] = logit > 0 ? 1 : 0;
    if (x[i]) for (let j = 0; j < M; j++) pre[j] += wIn[j * D + i];   // the masked layer sees key i from now on
  }
  return x;
}

/** The window decoded greedily from z alone, as chordvae.sequence.SequenceDecoder.mean: T frames
 *  after a blank context (the decoder first reads CFG.context empty frames); with feed "none" no
 *  frame is fed back. A latent per frame (chordvae.stepwise.StepwiseDecoder.mean): frame t reads
 *  the GRU's state over the frames before it and its own z_t, the t-th CFG.latent_dim numbers of z. */
function decodeFrames(z) {
  const H = CFG.decoder_hidden, L = CFG.latent_dim, perFrame = CFG.latent_per === "frame";
  let h = new Float64Array(H);
  if (L && !perFrame) h = affine(W["decoder.initial.weight"], W["decoder.initial.bias"], z).map(Math.tanh);
  const blank = new Float64Array(D), frames = [];
  const zf = Float64Array.from(z), input = prev => (perFrame ? prev : concat(prev, zf));
  for (let t = 0; t < CFG.context; t++) h = gruStep("decoder.gru", "", input(blank), h);
  let prev = blank;
  for (let t = 0; t < T; t++) {
    h = gruStep("decoder.gru", "", input(prev), h);
    const frame = frameGreedy(concat(h, perFrame ? zf.subarray(t * L, (t + 1) * L) : zf));
    frames.push(frame);
    prev = CFG.feed === "none" ? blank : frame;
  }
  return frames;
}

/** The posterior mean of a window (`frames`: T frames of D numbers, `mask`: which are scored), as
 *  chordvae.sequence.SequenceEncoder: a BiGRU over the first (scored) frames, its outputs averaged
 *  over the scored frames (pooling "mean") or its two end states (pooling "ends"). */
function encodeWindow(frames, mask) {
  if (CFG.latent_per === "frame") return encodeFrames(frames);
  const He = CFG.encoder_hidden;
  const scored = mask.filter(Boolean).length;
  const L = Math.max(1, scored);
  const fwd = [], bwd = [];
  let h = new Float64Array(He);
  for (let t = 0; t < L; t++) fwd.push(h = gruStep("encoder.gru", "", frames[t], h));
  h = new Float64Array(He);
  for (let t = L - 1; t >= 0; t--) bwd[t] = h = gruStep("encoder.gru", "_reverse", frames[t], h);
  const pooled = new Float64Array(2 * He);
  if (CFG.pooling === "ends") {
    pooled.set(fwd[L - 1], 0);
    pooled.set(bwd[0], He);
    return Array.from(affine(W["encoder.posterior.weight"], W["encoder.posterior.bias"], pooled).slice(0, CFG.latent_dim));
  }
  for (let t = 0; t < L; t++) {
    if (!mask[t]) continue;
    for (let j = 0; j < He; j++) { pooled[j] += fwd[t][j]; pooled[He + j] += bwd[t][j]; }
  }
  for (let j = 0; j < 2 * He; j++) pooled[j] /= Math.max(1, scored);
  return Array.from(affine(W["encoder.posterior.weight"], W["encoder.posterior.bias"], pooled).slice(0, CFG.latent_dim));
}

/** The posterior means of a window's frames with a latent per frame, as
 *  chordvae.stepwise.StepwiseVAE.encode: for every frame t (scored or not, as in Python) the
 *  decoder GRU's state over the frames before it and frame t itself, through the posterior's MLP;
 *  T * CFG.latent_dim numbers, frame by frame. */
function encodeFrames(frames) {
  const L = CFG.latent_dim, z = [];
  let h = new Float64Array(CFG.decoder_hidden), prev = new Float64Array(D);
  for (let t = 0; t < T; t++) {
    h = gruStep("decoder.gru", "", prev, h);
    const hidden = affine(W["encoder.net.0.weight"], W["encoder.net.0.bias"], concat(h, frames[t])).map(Math.tanh);
    z.push(...affine(W["encoder.net.2.weight"], W["encoder.net.2.bias"], hidden).slice(0, L));
    prev = frames[t];
  }
  return z;
}

/** Latent point -> plane coordinates, as chordvae.plane.LatentPlane.project. */
function project(z) {
  const { centre, basis } = DATA.plane;
  return [0, 1].map(k => z.reduce((s, x, i) => s + (x - centre[i]) * basis[k][i], 0));
}

// ---------- chord names (the table chordvae.progressions.frames.frame_symbols filled) ----------
const NAME_ROWS = DATA.names.symbols.split("\n").map(line => line.split("\t"));
const ROOTS = DATA.names.roots;
const pcsOf = mask => [...Array(12).keys()].filter(pc => (mask >> pc) & 1);

/** frame_symbols' symbol of the set `mask` over `bass` (a pitch class of the set, or null). */
function symbolOf(mask, bass) {
  const row = NAME_ROWS[mask - 1], plain = row[row.length - 1];
  if (bass === null) return plain;
  let k = 0;
  for (let pc = 0; pc < bass; pc++) k += (mask >> pc) & 1;
  return row[k] || plain;
}

/** Per frame, as chordvae.progressions.frames.frame_chords and frame_symbols read it: its
 *  pitch-class mask, its bass (the first bass pitch class set, null when none is or it is not in
 *  the chord) and its symbol ("N": no chord). */
function beatsOf(frames) {
  return frames.map(f => {
    let mask = 0, bass = null;
    for (let pc = 0; pc < 12; pc++) if (f[pc] >= 0.5) mask |= 1 << pc;
    for (let pc = 11; pc >= 0; pc--) if (f[12 + pc] >= 0.5) bass = pc;
    if (bass !== null && !((mask >> bass) & 1)) bass = null;
    return { mask, bass, symbol: mask ? symbolOf(mask, bass) : "N" };
  });
}

/** The beats as a typed progression with beats, as chordvae.progressions.frames.progression_text. */
function progressionText(beats, perBar = BPB) {
  const tokens = beats.map((b, i) => (i % perBar === 0 || b.symbol !== beats[i - 1].symbol ? b.symbol : "."));
  const bars = [];
  for (let i = 0; i < tokens.length; i += perBar) bars.push(tokens.slice(i, i + perBar).join(" "));
  return "| " + bars.join(" | ") + " |";
}

/** Notes [pitch, start, end] (beats from `offset`) of the beats played as
 *  chordvae.listen.progressions.held_chords plays a window: a chord held while its symbol repeats,
 *  voiced over its bass (else over its root). */
function notesOf(beats, offset = 0) {
  const notes = [];
  beats.forEach((b, s) => {
    if (!b.mask || (s > 0 && b.symbol === beats[s - 1].symbol)) return;
    let end = s + 1;
    while (end < beats.length && beats[end].symbol === b.symbol) end++;
    for (const p of voiceOver(pcsOf(b.mask), b.bass ?? ROOTS[b.mask])) notes.push([p, offset + s, offset + end]);
  });
  return notes;
}

/** The progression decoded at plane point (u, v). */
function decodeAt(u, v) {
  const z = latentAt(u, v);
  const beats = beatsOf(decodeFrames(z));
  return { u, v, z, beats, text: progressionText(beats) };
}

// ---------- typed progressions (a subset of chordvae.progressions.typed) ----------
const SUFFIXES = new Map(Object.entries(DATA.parser.suffixes));
const SYMBOL = /^([A-G][#b]?)(.*?)(?:\/([A-G][#b]?))?$/;
const NO_CHORD = ["N", "NC", "N.C."];
const UNREAD = "the page reads chord symbols as chordvae writes them (C, Am7, G/B, Bbmaj7), pitch classes " +
  "(0,4,7) and N; for other forms (Roman numerals, file spans, other figures) use `chordvae encode`";

function notePc(note) {
  const { letters, letterPcs } = DATA.parser;
  return (((letterPcs[letters.indexOf(note[0])] + (note.split("#").length - 1) - (note.slice(1).split("b").length - 1)) % 12) + 12) % 12;
}

/** One chord token -> {mask, bass, root}; no chord: mask 0. Throws an Error saying what it reads. */
function parseToken(token) {
  if (NO_CHORD.includes(token.toUpperCase())) return { mask: 0, bass: -1, root: -1 };
  if (/^\d+(\s*,\s*\d+)*$/.test(token)) {
    const pcs = token.split(",").map(Number);
    if (pcs.every(pc => pc < 12)) {
      const mask = pcs.reduce((m, pc) => m | (1 << pc), 0);
      return { mask, bass: pcs[0], root: ROOTS[mask] };
    }
  }
  const m = SYMBOL.exec(token);
  if (!m || !SUFFIXES.has(m[2])) throw new Error(`cannot read ${JSON.stringify(token)}: ${UNREAD}`);
  const root = notePc(m[1]), bass = m[3] ? notePc(m[3]) : root;
  const mask = SUFFIXES.get(m[2]).reduce((acc, i) => acc | (1 << ((root + i) % 12)), 1 << bass);
  return { mask, bass, root: ROOTS[mask] };
}

/** A typed progression -> the run's window: {frames (T frames of D), mask (T)}, as
 *  Progressions.parse_event gives it (after the context). Throws an Error with a one-line message. */
function parseProgression(text) {
  const body = text.trim();
  if (!body || !body.replace(/^\|+|\|+$/g, "").trim()) throw new Error('empty progression: write chords such as "C G Am F" or "| C . G . |"');
  let tokens;
  if (body.includes("|")) {
    const bars = body.replace(/^\|+|\|+$/g, "").split("|").map(bar => bar.trim().split(/\s+/).filter(Boolean));
    bars.forEach((bar, i) => {
      if (bar.length !== BPB) throw new Error(`bar ${i + 1} has ${bar.length} beat${bar.length === 1 ? "" : "s"}; a bar of this run has ${BPB} (write '.' to hold a chord)`);
    });
    tokens = bars.flat();
  } else {
    tokens = body.split(/\s+/).flatMap(t => Array(BPB).fill(t));
  }
  if (tokens.length > T) throw new Error(`${JSON.stringify(text)} has ${tokens.length} beats; the windows hold ${T}`);
  const chords = [];
  for (const token of tokens) {
    if (token === ".") {
      if (!chords.length) throw new Error(`${JSON.stringify(text)} starts with '.', which holds the chord before it`);
      chords.push(chords[chords.length - 1]);
    } else chords.push(parseToken(token));
  }
  const frames = [], mask = [];
  for (let t = 0; t < T; t++) {
    const f = new Float64Array(D);
    const c = chords[t];
    if (c) {
      for (let pc = 0; pc < 12; pc++) f[pc] = (c.mask >> pc) & 1;
      if (c.mask) {
        f[12 + c.bass] = 1;
        if (DATA.run.layoutRoot) f[24 + c.root] = 1;
      } else f[D - 1] = 1;
    }
    frames.push(f);
    mask.push(t < chords.length);
  }
  return { frames, mask };
}

// ---------- the corpus's windows ----------
const POINTS = (() => {
  const q = new Int16Array(bytes(DATA.points.uv)), s = DATA.points.scale / 32767;
  const n = DATA.points.n;
  const u = new Float32Array(n), v = new Float32Array(n);
  for (let i = 0; i < n; i++) { u[i] = q[2 * i] * s; v[i] = q[2 * i + 1] * s; }
  const file = new Uint16Array(bytes(DATA.points.file));
  const labels = c => (c.wide ? new Uint16Array(bytes(c.of)) : new Uint8Array(bytes(c.of)));
  return { n, u, v, file, bar: new Int16Array(bytes(DATA.points.bar)),
           span: new Uint8Array(bytes(DATA.points.span)), key: new Uint8Array(bytes(DATA.points.key)),
           shift: DATA.points.shift ? new Uint8Array(bytes(DATA.points.shift)) : new Uint8Array(n),
           means: new Int8Array(bytes(DATA.points.means)),
           of: DATA.colourings.map(c => { const of = labels(c); return c.byFile ? Uint16Array.from(file, f => of[f]) : of; }) };
})();

/** What a corpus window is: file, bars, key, cadence, corpus (chordvae.progressions.annotate). */
function windowLabel(i) {
  const first = POINTS.bar[i], last = first + POINTS.span[i];
  const col = name => { const k = DATA.colourings.findIndex(c => c.name === name); return DATA.colourings[k].labels[POINTS.of[k][i]]; };
  const shift = POINTS.shift[i] ? ` (moved ${((POINTS.shift[i] + 5) % 12) - 5 > 0 ? "+" : ""}${((POINTS.shift[i] + 5) % 12) - 5})` : "";
  const file = DATA.files[POINTS.file[i]], corpus = col("corpus");
  return `${file}, bars ${first === last ? first : `${first}–${last}`}${shift} · ` +
    `${DATA.keys[POINTS.key[i]]} · last chord ${col("cadence")}` + (file.startsWith(`${corpus}/`) ? "" : ` · ${corpus}`);
}

/** A latent point in the coordinates the windows are ranked by: itself, or for a large corpus its
 *  coordinates along the means' first principal directions (DATA.points.ranking). */
function rankingCoordinates(z) {
  const r = DATA.points.ranking;
  return r ? r.basis.map(row => row.reduce((sum, b, j) => sum + b * (z[j] - r.centre[j]), 0)) : z;
}

/** The `k` corpus windows of `bars` bars nearest to the latent points `queries` (the nearest of
 *  them for each window), as `chordvae similar` ranks them: in the latent space, or for a large
 *  corpus along the means' first principal directions. */
function nearest(queries, k, bars) {
  const steps = DATA.points.meanSteps, D = steps.length;
  const points = queries.map(rankingCoordinates);
  const distance = i => {
    let best = Infinity;
    for (const q of points) {
      let d = 0;
      for (let j = 0; j < D; j++) d += (POINTS.means[i * D + j] * steps[j] - q[j]) ** 2;
      best = Math.min(best, d);
    }
    return best;
  };
  const best = [];
  for (let i = 0; i < POINTS.n; i++) {
    if (POINTS.span[i] + 1 !== bars) continue;
    const d = distance(i);
    if (best.length < k || d < best[best.length - 1][0]) {
      best.push([d, i]);
      best.sort((a, b) => a[0] - b[0]);
      if (best.length > k) best.pop();
    }
  }
  return best.map(([, i]) => i);
}

// ---------- state, playing, the morph ----------
const state = { cursor: [0, 0], current: null, path: [], walk: [], playing: -1, colouring: 0, hoverPoint: -1,
                drawing: null, found: null, started: null };

const settings = () => ({ steps: Math.round(field("steps", 8, 2, 32)), bpm: field("bpm", DATA.render.bpm, 20, 300) });

/** Schedule `notes` ([pitch, start, end] in beats) from now at `bpm`, onsets grouped as chords. */
function playNotes(notes, bpm) {
  stop();
  const ctx = audioContext();
  const beat = 60 / bpm, t0 = ctx.currentTime + 0.05;
  const groups = new Map();
  for (const [p, start, end] of notes) {
    const key = `${start}:${end}`;
    if (!groups.has(key)) groups.set(key, { start, end, pitches: [] });
    groups.get(key).pitches.push(p);
  }
  for (const g of groups.values()) schedule(g.pitches, t0 + g.start * beat, (g.end - g.start) * beat);
  state.started = t0;
  return { t0, beat };
}

function play(c = state.current) {
  if (c) playNotes(notesOf(c.beats), settings().bpm);
}

function stop() {
  stopAudio();
  if (state.playing >= 0) { state.playing = -1; renderWalk(); }
}

function updateWalk() {
  state.walk = resample(state.path, settings().steps).map(([u, v]) => decodeAt(u, v));
  renderWalk();
}

function renderWalk() {
  const list = document.getElementById("walk-list");
  list.replaceChildren(...state.walk.map((c, i) => {
    const li = document.createElement("li");
    li.textContent = c.text;
    li.tabIndex = 0;
    if (i === state.playing) li.className = "playing";
    const go = () => { moveCursor(c.u, c.v); play(state.current); };
    li.addEventListener("click", go);
    li.addEventListener("keydown", e => { if (e.key === "Enter" || e.key === " ") { go(); e.preventDefault(); } });
    return li;
  }));
  for (const id of ["play-walk", "download"]) document.getElementById(id).disabled = !state.walk.length;
  document.getElementById("walk-hint").hidden = state.walk.length > 0;
  draw();
}

const walkNotes = () => state.walk.flatMap((c, k) => notesOf(c.beats, k * T));

function playWalk() {
  if (!state.walk.length) return;
  const { beat } = playNotes(walkNotes(), settings().bpm);
  state.walk.forEach((c, k) => audio.timers.push(setTimeout(() => { state.playing = k; showProgression(c); renderWalk(); }, 50 + k * T * beat * 1000)));
  audio.timers.push(setTimeout(() => { state.playing = -1; renderWalk(); }, 50 + state.walk.length * T * beat * 1000));
}

/** The morph as a .mid file: each step's progression after the one before, as `chordvae interpolate` writes it. */
const walkMidi = () => midiBytes(walkNotes(), { bpm: settings().bpm });

// ---------- drawing ----------
const canvas = document.getElementById("plane");
const g = canvas.getContext("2d");
let view = { size: 0, side: 0 };
const layer = document.createElement("canvas");

const toPx = (u, v) => [M.left + ((u + E) / (2 * E)) * view.side, M.top + ((E - v) / (2 * E)) * view.side];
const fromPx = (x, y) => [((x - M.left) / view.side) * 2 * E - E, E - ((y - M.top) / view.side) * 2 * E];

/** The corpus's windows drawn once per size and colouring into `layer`. */
function paintPoints() {
  const dpr = window.devicePixelRatio || 1;
  layer.width = layer.height = Math.round(view.size * dpr);
  const lg = layer.getContext("2d");
  lg.setTransform(dpr, 0, 0, dpr, 0, 0);
  lg.beginPath(); lg.rect(M.left, M.top, view.side, view.side); lg.clip();
  const col = DATA.colourings[state.colouring], of = POINTS.of[state.colouring];
  const r = POINTS.n > 5000 ? 1.1 : POINTS.n > 500 ? 2 : 3.2;
  lg.globalAlpha = POINTS.n > 5000 ? 0.55 : 0.8;
  for (let i = 0; i < POINTS.n; i++) {
    lg.fillStyle = col.colours[of[i]];
    const [x, y] = toPx(POINTS.u[i], POINTS.v[i]);
    lg.fillRect(x - r, y - r, 2 * r, 2 * r);
  }
}

function resize() {
  view = fitCanvas(canvas, g);
  paintPoints();
  draw();
}

function niceStep(span) {
  const raw = span / 8;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map(m => m * p).find(s => s >= raw);
}

function marker(u, v, fill, radius, label) {
  const [x, y] = toPx(u, v);
  g.beginPath(); g.arc(x, y, radius, 0, 2 * Math.PI); g.fillStyle = fill; g.fill();
  g.lineWidth = 1.5; g.strokeStyle = "#fff"; g.stroke();
  if (label !== undefined) { g.fillStyle = "#fff"; g.font = "600 9px system-ui, sans-serif"; g.textAlign = "center"; g.fillText(label, x, y + 3); }
}

function draw() {
  if (!view.size) return;
  const { size, side } = view;
  g.clearRect(0, 0, size, size);
  g.fillStyle = "#fff"; g.fillRect(M.left, M.top, side, side);
  g.drawImage(layer, 0, 0, size, size);
  g.strokeStyle = "#9aa3b2"; g.fillStyle = "#5d6675"; g.lineWidth = 1;
  g.strokeRect(M.left, M.top, side, side);
  drawAxes(g, side);
  g.save();
  g.beginPath(); g.rect(M.left, M.top, side, side); g.clip();
  if (state.hoverPoint >= 0) {
    const [x, y] = toPx(POINTS.u[state.hoverPoint], POINTS.v[state.hoverPoint]);
    g.beginPath(); g.arc(x, y, 5, 0, 2 * Math.PI); g.lineWidth = 2; g.strokeStyle = "#1d2330"; g.stroke();
  }
  const path = state.drawing || state.path;
  if (path.length) {
    g.setLineDash([5, 4]); g.strokeStyle = "#1d2330"; g.lineWidth = 1.5;
    g.beginPath(); path.forEach(([u, v], k) => { const [x, y] = toPx(u, v); k ? g.lineTo(x, y) : g.moveTo(x, y); }); g.stroke();
    g.setLineDash([]);
  }
  if (!state.drawing) state.walk.forEach((c, i) => marker(c.u, c.v, i === state.playing ? "#2f6fdf" : "#1d2330", i === state.playing ? 10 : 7, i + 1));
  if (state.found) marker(state.found.uv[0], state.found.uv[1], "#c2185b", 8, "★");
  const [cx, cy] = toPx(...state.cursor);
  g.strokeStyle = "#1d2330"; g.lineWidth = 1.5;
  g.beginPath(); g.arc(cx, cy, 6, 0, 2 * Math.PI); g.moveTo(cx - 11, cy); g.lineTo(cx - 6, cy); g.moveTo(cx + 6, cy); g.lineTo(cx + 11, cy);
  g.moveTo(cx, cy - 11); g.lineTo(cx, cy - 6); g.moveTo(cx, cy + 6); g.lineTo(cx, cy + 11); g.stroke();
  g.restore();
}

// ---------- readout ----------
/** The beats as a row of bars, each chord one cell as wide as the beats it is held for (within its bar). */
function barsElement(beats) {
  const row = document.createElement("div");
  for (let b = 0; b < beats.length; b += BPB) {
    const bar = document.createElement("div");
    bar.className = "pbar";
    const inBar = beats.slice(b, b + BPB);
    for (let k = 0; k < inBar.length;) {
      let end = k + 1;
      while (end < inBar.length && inBar[end].symbol === inBar[k].symbol) end++;
      const cell = document.createElement("span");
      cell.className = inBar[k].symbol === "N" ? "beat rest" : "beat";
      cell.style.flexGrow = end - k;
      cell.textContent = inBar[k].symbol;
      cell.title = `beat${end - k > 1 ? "s" : ""} ${k + 1}${end - k > 1 ? `–${end}` : ""} of bar ${b / BPB + 1}`;
      bar.append(cell);
      k = end;
    }
    row.append(bar);
  }
  return row;
}

function showProgression(c) {
  const put = (id, text) => { document.getElementById(id).textContent = text; };
  document.getElementById("progression").replaceChildren(...barsElement(c.beats).childNodes);
  document.getElementById("progression").style.gridTemplateColumns = `repeat(${Math.min(4, Math.ceil(c.beats.length / BPB))}, 1fr)`;
  put("text", c.text);
  put("where", `${DATA.run.axes[0]} ${c.u.toFixed(3)}, ${DATA.run.axes[1]} ${c.v.toFixed(3)}  ·  z = (${c.z.map(x => x.toFixed(2)).join(", ")})`);
  put("window-info", state.hoverPoint >= 0 ? `corpus window: ${windowLabel(state.hoverPoint)}` : "");
}

/** Spatial buckets of the points, for hovering. */
const BUCKETS = 96;
const bucketOf = (u, v) => Math.min(BUCKETS - 1, Math.max(0, Math.floor(((u + E) / (2 * E)) * BUCKETS))) * BUCKETS +
  Math.min(BUCKETS - 1, Math.max(0, Math.floor(((v + E) / (2 * E)) * BUCKETS)));
const BUCKET = (() => {
  const b = new Map();
  for (let i = 0; i < POINTS.n; i++) {
    const k = bucketOf(POINTS.u[i], POINTS.v[i]);
    if (!b.has(k)) b.set(k, []);
    b.get(k).push(i);
  }
  return b;
})();

function pointNear(x, y) {
  const [u, v] = fromPx(x, y);
  const reach = (5 / view.side) * 2 * E;
  let best = -1, bestD = reach * reach;
  const cu = Math.floor(((u + E) / (2 * E)) * BUCKETS), cv = Math.floor(((v + E) / (2 * E)) * BUCKETS);
  const span = Math.ceil((reach / (2 * E)) * BUCKETS);
  for (let a = cu - span; a <= cu + span; a++) {
    for (let b = cv - span; b <= cv + span; b++) {
      if (a < 0 || b < 0 || a >= BUCKETS || b >= BUCKETS) continue;
      for (const i of BUCKET.get(a * BUCKETS + b) || []) {
        const d = (POINTS.u[i] - u) ** 2 + (POINTS.v[i] - v) ** 2;
        if (d < bestD) [best, bestD] = [i, d];
      }
    }
  }
  return best;
}

function moveCursor(u, v, point = -1) {
  state.cursor = [Math.min(E, Math.max(-E, u)), Math.min(E, Math.max(-E, v))];
  state.hoverPoint = point;
  state.current = decodeAt(...state.cursor);
  showProgression(state.current);
  draw();
  return state.current;
}

// ---------- search ----------
/** Frames moved up by `k` semitones (each 12-wide pitch-class block rotated; the no-chord bit stays). */
function transposeFrames(frames, k) {
  return frames.map(f => {
    const g = Float64Array.from(f);
    for (let block = 0; block + 12 < D; block += 12) for (let pc = 0; pc < 12; pc++) g[block + (pc + k) % 12] = f[block + pc];
    return g;
  });
}

/** Encode a typed progression: its posterior mean, plane point and nearest windows (for a run
 *  trained on all 12 transpositions, as `chordvae similar`: the query in each of them). */
function search(text) {
  const { frames, mask } = parseProgression(text);
  const mu = encodeWindow(frames, mask);
  const shifts = ["all", "random"].includes(DATA.run.transpose) ? [...Array(12).keys()] : [0];
  const queries = shifts.map(k => (k ? encodeWindow(transposeFrames(frames, k), mask) : mu));
  const bars = Math.ceil((mask.lastIndexOf(true) + 1) / BPB);
  state.found = { text, mu, uv: project(mu), bars, near: nearest(queries, 10, bars) };
  return state.found;
}

/** Where the windows are ranked, in words. */
function rankingNote() {
  const r = DATA.points.ranking;
  return r ? `along the means' first ${r.basis.length} principal directions (${Math.round(100 * r.variance)}% ` +
    `of their variance; \`chordvae similar\` ranks in the whole latent space)` : "in the latent space";
}

function runSearch() {
  const result = document.getElementById("search-result");
  const list = document.getElementById("nearest");
  try {
    const f = search(document.getElementById("search").value);
    result.className = "hint";
    result.textContent = `encoded at xy:${f.uv.map(x => x.toFixed(3)).join(",")} (★ on the plane; z:${f.mu.map(x => x.toFixed(3)).join(",")}). ` +
      `The ${f.bars}-bar corpus windows nearest ${rankingNote()}:`;
    list.replaceChildren(...f.near.map(i => {
      const li = document.createElement("li");
      li.textContent = windowLabel(i);
      li.tabIndex = 0;
      const go = () => { moveCursor(POINTS.u[i], POINTS.v[i], i); play(); };
      li.addEventListener("click", go);
      li.addEventListener("keydown", e => { if (e.key === "Enter" || e.key === " ") { go(); e.preventDefault(); } });
      return li;
    }));
  } catch (err) {
    state.found = null;
    result.className = "hint error";
    result.textContent = `error: ${err.message}`;
    list.replaceChildren();
  }
  draw();
}

// ---------- input ----------
bindPlane(POINTS, (c, shift) => { if (!shift) play(c); });
bindPlaneKeys(() => play(decodeAt(...state.cursor)));

document.getElementById("play").addEventListener("click", () => play());
document.getElementById("play-walk").addEventListener("click", playWalk);
document.getElementById("stop").addEventListener("click", stop);
document.getElementById("download").addEventListener("click", () => {
  if (state.walk.length) download(walkMidi(), "chordvae-morph.mid", "audio/midi");
});
document.getElementById("clear").addEventListener("click", clearWalk);
document.getElementById("steps").addEventListener("change", updateWalk);
document.getElementById("search-form").addEventListener("submit", e => { e.preventDefault(); runSearch(); });

const select = document.getElementById("colour-by");
DATA.colourings.forEach((c, i) => select.append(new Option(c.name, i)));
select.addEventListener("change", () => { state.colouring = +select.value; legend(); paintPoints(); draw(); });

const LEGEND = 16;   // at most this many labels in the legend (the most frequent)
function legend() {
  const col = DATA.colourings[state.colouring];
  const counts = new Array(col.labels.length).fill(0);
  for (const c of POINTS.of[state.colouring]) counts[c]++;
  const shown = col.labels.map((_, k) => k).sort((a, b) => counts[b] - counts[a]).slice(0, LEGEND);
  const items = shown.map(k => {
    const li = document.createElement("li");
    li.innerHTML = `<i style="background:${col.colours[k]}"></i>`;
    li.append(`${col.labels[k]} (${counts[k]})`);
    if (!counts[k]) li.style.opacity = 0.4;
    return li;
  });
  if (col.labels.length > LEGEND) {
    const li = document.createElement("li");
    li.append(`… and ${col.labels.length - LEGEND} more`);
    items.push(li);
  }
  document.getElementById("legend").replaceChildren(...items);
}

// ---------- start ----------
document.getElementById("run-info").textContent =
  `${DATA.run.dir} · epoch ${DATA.run.epoch} · latent size ${DATA.run.latentDim} · windows of ${DATA.run.bars} bars ` +
  `(${T} beats) · decoded greedily in the page` + (DATA.run.note ? ` · ${DATA.run.note}` : "");
document.getElementById("points-info").textContent =
  (DATA.points.n < DATA.points.total
    ? `${DATA.points.n} of the corpus's ${DATA.points.total} windows (a fixed random sample), `
    : `All ${DATA.points.total} windows of the corpus (one on every bar of every piece, as chordvae similar searches), `) +
  "at their posterior means. Hover a point for its file and bars.";
// one colour per corpus is no help beyond the colours there are: start with the key's mode then
state.colouring = DATA.colourings[0].labels.length > 8 ? 1 : 0;
select.value = state.colouring;
legend();
new ResizeObserver(resize).observe(canvas);
updateWalk();
moveCursor(0, 0);

/** What tests observe: scheduled notes, decoding, encoding, the morph and its MIDI. */
window.chordvaeTest = {
  scheduled,
  decodeAt: (u, v) => { const c = decodeAt(u, v); return { text: c.text, symbols: c.beats.map(b => b.symbol), z: c.z }; },
  decodeZ: z => progressionText(beatsOf(decodeFrames(z))),
  notesAt: (u, v) => notesOf(decodeAt(u, v).beats),
  search: text => { const f = search(text); return { mu: f.mu, uv: f.uv, near: f.near }; },
  setPath: points => { state.path = points.map(p => p.slice()); updateWalk(); return state.walk.length; },
  walk: () => state.walk.map(c => c.text),
  midi: () => Array.from(walkMidi()),
  toCanvas: (u, v) => toPx(u, v),
  point: i => [POINTS.u[i], POINTS.v[i]],
  window: i => ({ file: DATA.files[POINTS.file[i]], first: POINTS.bar[i], last: POINTS.bar[i] + POINTS.span[i], label: windowLabel(i) }),
  cursor: () => state.cursor.slice(),
  hovered: () => state.hoverPoint,
  startedAt: () => state.started,
  audioState: () => (audio.ctx ? audio.ctx.state : "none"),
};
