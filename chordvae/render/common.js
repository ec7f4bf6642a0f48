"use strict";
// chordvae pages, shared part: the page's data, base64 arrays, walks along a path, voicing,
// Web Audio and a small MIDI writer. Each page's own script (explorer.js, progressions.js) follows.

const DATA = JSON.parse(document.getElementById("chordvae-data").textContent);

/** The plane's margins around its square plot (px). */
const M = { left: 50, right: 14, top: 14, bottom: 44 };

/** Size `canvas` (2-d context `g`) to its displayed width at the device's pixel ratio; the new
 *  view: its size and the side of the square plot inside the margins (CSS px). */
function fitCanvas(canvas, g) {
  const dpr = window.devicePixelRatio || 1;
  const size = canvas.clientWidth;
  canvas.width = canvas.height = Math.round(size * dpr);
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  return { size, side: size - Math.max(M.left + M.right, M.top + M.bottom) };
}

/** The bytes of a base64 string, as an ArrayBuffer (little-endian arrays come from Python). */
function bytes(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out.buffer;
}

/** `steps` points equally spaced along the polyline `path` by arc length (both ends included). */
function resample(path, steps) {
  if (path.length < 2) return [];
  const cum = [0];
  for (let i = 1; i < path.length; i++) cum.push(cum[i - 1] + Math.hypot(path[i][0] - path[i - 1][0], path[i][1] - path[i - 1][1]));
  const total = cum[cum.length - 1];
  const out = [];
  let seg = 1;
  for (let k = 0; k < steps; k++) {
    const d = (total * k) / (steps - 1);
    while (seg < path.length - 1 && cum[seg] < d) seg++;
    const len = cum[seg] - cum[seg - 1];
    const t = len > 0 ? Math.min(1, Math.max(0, (d - cum[seg - 1]) / len)) : 0;
    const [a, b] = [path[seg - 1], path[seg]];
    out.push(k === steps - 1 ? path[path.length - 1].slice() : [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]);
  }
  return out;
}

/** A number input's value clamped to [lo, hi], or `fallback` when it is not a number. */
function field(id, fallback, lo, hi) {
  const v = parseFloat(document.getElementById(id).value);
  return Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : fallback;
}

/** MIDI notes as chordvae.listen.voicing.voice: the bass pitch class `bass` in C2..B2, then every
 *  pitch class in close position upwards from middle C. */
function voiceOver(pcs, bass) {
  const sorted = [...new Set(pcs)].sort((a, b) => a - b);
  if (!sorted.length) throw new Error("cannot voice an empty chord");
  return [DATA.voicing.bassLow + (((bass % 12) + 12) % 12), ...sorted.map(pc => DATA.voicing.middleC + pc)];
}

/** Plane coordinates (u, v) -> latent point, as chordvae.plane.LatentPlane.to_latent: centre +
 *  u * basis[0] + v * basis[1], plus the hidden coordinates: the anchors' lifts averaged with
 *  weights softmax(log_weights - squared distance to the anchor / (2 bandwidth^2)). */
function latentAt(u, v) {
  const { centre, basis, anchors, lifts, log_weights: logW, bandwidth } = DATA.plane;
  const z = centre.map((c, i) => c + u * basis[0][i] + v * basis[1][i]);
  if (!anchors || !anchors.length) return z;
  const logits = anchors.map(([a, b], k) => logW[k] - ((u - a) ** 2 + (v - b) ** 2) / (2 * bandwidth * bandwidth));
  const top = Math.max(...logits);
  const w = logits.map(l => Math.exp(l - top));
  const total = w.reduce((s, x) => s + x, 0);
  for (let k = 0; k < w.length; k++) {
    const share = w[k] / total;
    for (let i = 0; i < z.length; i++) z[i] += share * lifts[k][i];
  }
  return z;
}

// ---------- sound ----------
const audio = { ctx: null, out: null, wave: null, nodes: [], timers: [] };
/** Every note group scheduled, for tests: {pitches, start (s, AudioContext clock), duration (s)}. */
const scheduled = [];

/** The AudioContext, made on the first user gesture (browsers allow sound only after one). */
function audioContext() {
  if (!audio.ctx) {
    const ctx = new AudioContext();
    const comp = ctx.createDynamicsCompressor();
    audio.out = ctx.createGain();
    audio.out.gain.value = 0.5;
    audio.out.connect(comp).connect(ctx.destination);
    // A soft electric-piano-like tone: a few harmonics falling off quickly.
    const real = new Float32Array([0, 1, 0.42, 0.18, 0.1, 0.04, 0.02]);
    audio.wave = ctx.createPeriodicWave(real, new Float32Array(real.length));
    audio.ctx = ctx;
  }
  if (audio.ctx.state === "suspended") audio.ctx.resume();
  return audio.ctx;
}

/** Play MIDI `pitches` from time `start` (s, AudioContext clock) for `duration` s, with an envelope. */
function schedule(pitches, start, duration) {
  scheduled.push({ pitches: pitches.slice(), start, duration });
  const ctx = audio.ctx;
  const peak = 0.6 / Math.sqrt(pitches.length);
  for (const p of pitches) {
    const osc = ctx.createOscillator();
    osc.setPeriodicWave(audio.wave);
    osc.frequency.value = 440 * 2 ** ((p - 69) / 12);
    const g = ctx.createGain();
    g.gain.setValueAtTime(0, start);
    g.gain.linearRampToValueAtTime(peak * (p < 48 ? 0.8 : 1), start + 0.012);
    g.gain.setTargetAtTime(peak * 0.35, start + 0.012, 0.35);
    g.gain.setTargetAtTime(0, start + duration * 0.95, 0.08);
    osc.connect(g).connect(audio.out);
    osc.start(start);
    osc.stop(start + duration + 0.6);
    audio.nodes.push(osc);
    osc.onended = () => {
      const k = audio.nodes.indexOf(osc);
      if (k >= 0) audio.nodes.splice(k, 1);
    };
  }
}

/** Silence every scheduled note and cancel the pending timers. */
function stopAudio() {
  for (const osc of audio.nodes.splice(0)) osc.stop();
  for (const t of audio.timers.splice(0)) clearTimeout(t);
}

// ---------- MIDI (Standard MIDI File, format 0) ----------
function varLen(n) {
  const out = [n & 0x7f];
  while ((n >>= 7)) out.unshift((n & 0x7f) | 0x80);
  return out;
}

/** The bytes of a .mid file holding `notes` ([pitch, start, end] in beats) at `bpm`, one track
 *  with `program`, as chordvae.listen.midi writes them (note-offs before note-ons at a tick). */
function midiBytes(notes, { bpm, velocity = DATA.render.velocity, program = DATA.render.program }) {
  const PPQ = 480;
  const events = []; // [tick, order (offs before ons), bytes]
  for (const [p, start, end] of notes) {
    events.push([Math.round(start * PPQ), 1, [0x90, p, velocity]]);
    events.push([Math.round(end * PPQ), 0, [0x80, p, 0]]);
  }
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const tempo = Math.round(60e6 / bpm);
  const track = [0x00, 0xff, 0x51, 0x03, (tempo >> 16) & 0xff, (tempo >> 8) & 0xff, tempo & 0xff, 0x00, 0xc0, program];
  let now = 0;
  for (const [tick, , data] of events) {
    track.push(...varLen(tick - now), ...data);
    now = tick;
  }
  track.push(0x00, 0xff, 0x2f, 0x00);
  const u32 = n => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
  const ascii = s => Array.from(s, ch => ch.charCodeAt(0));
  return new Uint8Array([...ascii("MThd"), ...u32(6), 0, 0, 0, 1, PPQ >> 8, PPQ & 0xff,
                         ...ascii("MTrk"), ...u32(track.length), ...track]);
}

/** Offer `data` (bytes) as a download named `name`. */
function download(data, name, type) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([data], { type }));
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

/** Adds the plane point `uv` to the walk. */
function addWaypoint(uv) {
  state.path = [...state.path, uv.slice()];
  updateWalk();
}

/** Stops playing and empties the walk. */
function clearWalk() {
  stop();
  state.path = [];
  updateWalk();
}

/** Keyboard on the plane: arrows move the cursor (Shift: larger steps), Enter or Space calls
 *  `playHere`, W adds the cursor to the walk, P plays the walk, Esc clears it. */
function bindPlaneKeys(playHere) {
  canvas.addEventListener("keydown", e => {
    const step = (2 * E) / (e.shiftKey ? 12 : 48);
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
    const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    if (moves[key]) moveCursor(state.cursor[0] + moves[key][0], state.cursor[1] + moves[key][1]);
    else if (key === "Enter" || key === " ") playHere();
    else if (key === "w") addWaypoint(state.cursor);
    else if (key === "p") playWalk();
    else if (key === "Escape") clearWalk();
    else return;
    e.preventDefault();
  });
}

/** The plane's ticks (a nice step over [-E, E]) and axis names around the square of `side` px. */
function drawAxes(g, side) {
  g.font = "11px system-ui, sans-serif";
  const step = niceStep(2 * E);
  for (let t = Math.ceil(-E / step) * step; t <= E + 1e-9; t += step) {
    const [x] = toPx(t, 0); const [, y] = toPx(0, t);
    g.textAlign = "center"; g.fillText(+t.toFixed(2), x, M.top + side + 14);
    g.textAlign = "right"; g.fillText(+t.toFixed(2), M.left - 6, y + 4);
    g.beginPath(); g.moveTo(x, M.top + side); g.lineTo(x, M.top + side + 4); g.moveTo(M.left - 4, y); g.lineTo(M.left, y); g.stroke();
  }
  g.font = "12px system-ui, sans-serif"; g.textAlign = "center";
  g.fillText(DATA.run.axes[0], M.left + side / 2, M.top + side + 32);
  g.save(); g.translate(14, M.top + side / 2); g.rotate(-Math.PI / 2); g.fillText(DATA.run.axes[1], 0, 0); g.restore();
}

/** Pointer input on the plane over `points` (`u`, `v` per point): hovering moves the cursor
 *  (snapping to a point near it), dragging draws a walk, a click calls `clicked(c, shift)` with
 *  what `moveCursor` returns (Shift-click also adds the point to the walk). */
function bindPlane(points, clicked) {
  function eventPoint(e) {
    const r = canvas.getBoundingClientRect();
    const [x, y] = [e.clientX - r.left, e.clientY - r.top];
    const i = pointNear(x, y);
    return { uv: i >= 0 ? [points.u[i], points.v[i]] : fromPx(x, y), point: i, x, y };
  }
  let press = null;
  canvas.addEventListener("pointerdown", e => {
    press = { ...eventPoint(e), shift: e.shiftKey };
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener("pointermove", e => {
    const p = eventPoint(e);
    if (press && !state.drawing && Math.hypot(p.x - press.x, p.y - press.y) > 6) state.drawing = [fromPx(press.x, press.y)];
    if (state.drawing) state.drawing.push(fromPx(p.x, p.y));
    moveCursor(...p.uv, p.point);
  });
  canvas.addEventListener("pointerup", () => {
    if (!press) return;
    if (state.drawing) {
      state.path = state.drawing;
      state.drawing = null;
      updateWalk();
    } else {
      const c = moveCursor(...press.uv, press.point);
      if (press.shift) addWaypoint(press.uv);
      clicked(c, press.shift);
    }
    press = null;
  });
  canvas.addEventListener("pointerleave", () => { if (!press) { state.hoverPoint = -1; draw(); } });
}
