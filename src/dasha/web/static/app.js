// DASHA live view: polls /api/state, draws it, and posts the controls. No build step, no
// external resources: the page works on a machine without internet.
"use strict";

const POLL_MS = 200;
const $ = (id) => document.getElementById(id);
let state = null;
let scale = 1;          // displayed pixels per frame pixel
let drag = null;        // the AF window being dragged, in frame pixels
let filled = false;     // the selects are filled once, from the server's own choices

const fmt = (v, digits = 2) => (v === null || v === undefined ? "-" : Number(v).toFixed(digits));

function say(text, ok = false) {
  const m = $("message");
  m.textContent = text;
  m.className = ok ? "message ok" : "message";
}

async function post(path, body) {
  const r = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (r.ok) {
    say(`${path}: ${JSON.stringify(body)} applied`, true);
    return true;
  }
  let detail = `${r.status}`;
  try {
    const j = await r.json();
    detail = typeof j.detail === "string" ? j.detail : JSON.stringify(j.detail);
  } catch (e) { /* not JSON: keep the status */ }
  say(`refused (${r.status}): ${detail}`);
  return false;
}

function fillSelect(id, values) {
  const s = $(id);
  s.innerHTML = "";
  for (const v of values) {
    const o = document.createElement("option");
    o.value = o.textContent = v;
    s.appendChild(o);
  }
}

function setIfIdle(el, value) {
  if (document.activeElement !== el) el.value = value;  // never fight the user's hand
}

function sizeFrame(w, h) {
  scale = Math.min(625 / w, 606 / h);
  for (const el of [$("frame"), $("overlay"), $("frame-box")]) {
    el.style.width = `${w * scale}px`;
    el.style.height = `${h * scale}px`;
  }
  $("overlay").width = w * scale;
  $("overlay").height = h * scale;
}

function drawBox(ctx, box, color, label) {
  const [x1, y1, x2, y2] = box.map((v) => v * scale);
  ctx.strokeStyle = color;
  ctx.lineWidth = 2;
  ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
  if (label) {
    ctx.font = "13px sans-serif";
    const w = ctx.measureText(label).width + 6;
    ctx.fillStyle = color;
    ctx.fillRect(x1, Math.max(y1 - 17, 0), w, 17);
    ctx.fillStyle = "#000";
    ctx.fillText(label, x1 + 3, Math.max(y1 - 4, 13));
  }
}

function drawOverlay() {
  const c = $("overlay");
  const ctx = c.getContext("2d");
  ctx.clearRect(0, 0, c.width, c.height);
  if (!state) return;
  const f = state.frame;
  if (f.AfWindow) drawBox(ctx, f.AfWindow, "#e6c800", "AF window");
  const d = state.detection;
  if (d && d.box) {
    drawBox(ctx, d.box, "#1c1", `${d.class ?? "target"} ${fmt(d.score)} (frame ${d.frame})`);
  }
  if (drag) drawBox(ctx, normBox(drag), "#0af", "new AF window");
}

function drawHistogram() {
  const c = $("histogram");
  const ctx = c.getContext("2d");
  ctx.clearRect(0, 0, c.width, c.height);
  const h = state.histogram;
  if (!h) return;
  const x = (v) => (v / 255) * c.width;   // the 8-bit scale, so the band sits where it is
  const [lo, hi] = h.suitable;
  ctx.fillStyle = "rgba(0,160,0,0.15)";
  ctx.fillRect(x(lo), 0, x(hi) - x(lo), c.height);
  const top = Math.max(...h.counts);
  h.counts.forEach((n, i) => {
    const bh = (n / top) * (c.height - 14);
    ctx.fillStyle = h.edges[i] === h.peak ? "#346" : "#89a";
    ctx.fillRect(x(h.edges[i]), c.height - bh, Math.max(x(h.edges[i + 1]) - x(h.edges[i]) - 1, 1), bh);
  });
  ctx.fillStyle = "#333";
  ctx.font = "11px sans-serif";
  ctx.fillText("0", 0, 11);
  ctx.fillText("255", c.width - 20, 11);
  const inBand = h.peak >= lo && h.peak <= hi;
  $("hist-info").textContent =
    `peak P = ${fmt(h.peak, 1)} (left edge of the fullest bin): ${inBand ? "inside" : "outside"} [${lo}, ${hi}]`;
}

function moveRow(m, i) {
  const lens = m.what === "lens";
  const from = lens ? `${fmt(m.from_dpt, 3)} dpt (${fmt(m.from, 2)} ${m.unit})` : `${fmt(m.from, 0)} us`;
  const to = lens ? `${fmt(m.to_dpt, 3)} dpt (${fmt(m.to, 2)} ${m.unit})` : `${fmt(m.to, 0)} us`;
  const det = m.detection ? `[${m.detection.map((v) => Math.round(v)).join(", ")}]` :
    (m.score === 0 ? "not found" : "-");
  const cells = [i + 1, m.frame, m.who, m.what, from, to, fmt(m.fom, 4), det, fmt(m.score),
    fmt(m.brisque, 1), fmt(m.reward, 2)];
  return `<tr class="move">${cells.map((v, k) => `<td${k === 2 ? ' class="who"' : ""}>${v}</td>`).join("")}</tr>`;
}

function cycleTable(c, running) {
  const head = running
    ? `cycle running: ${c.algorithm}, ${c.frames} frames so far (contrast, detection and reward are filled in when it ends)` +
      (c.frames === 0 && c.algorithm === "dasha" ? "; no frame yet: the first DASHA cycle loads its policies and detector" : "")
    : `cycle ${c.cycle} (${c.reason}, ${c.algorithm}): ${c.state}` +
      (c.fail_reason ? `, stop reason: ${c.fail_reason}` : ", stop reason: focused") +
      (c.episode_stop ? ` (DASHA episode stop: ${c.episode_stop})` : "") +
      `; ${c.frames} frames, ${c.lens_moves} lens + ${c.exposure_moves} exposure moves, ` +
      `${fmt(c.duration_s, 2)} s camera time, lens at ${fmt(c.lens_position_dpt, 3)} dpt` +
      (c.parked_at_dpt !== undefined ? ` (parked at the sharpest, ${fmt(c.parked_at_dpt, 3)} dpt)` : "");
  const rows = c.moves.map(moveRow).join("");
  return `<table class="cycle${running ? " running" : ""}"><caption>${head}</caption>
    <tr><th>#</th><th>frame</th><th>who</th><th>what</th><th>from</th><th>to</th><th>contrast</th>
    <th>detection</th><th>score</th><th>BRISQUE</th><th>reward</th></tr>${rows}</table>`;
}

function render() {
  const s = state;
  const f = s.frame;
  if (!filled) {
    fillSelect("AfMode", s.choices.AfMode);
    fillSelect("AfAlgorithm", s.choices.AfAlgorithm);
    sizeFrame(s.frame_size[0], s.frame_size[1]);
    const [lo, hi] = s.lens.range_dpt;
    Object.assign($("LensPosition"), { min: Math.min(lo, hi), max: Math.max(lo, hi) });
    if (s.sim) {
      $("sim").hidden = false;
      fillSelect("scene", s.sim.scenes);
      $("trained").textContent = `DASHA's agents were trained at ${s.sim.trained_distance_cm.join("-")} cm and ` +
        `${s.sim.trained_illuminance_lux.join("-")} lx on the paper's scenes; elsewhere they may fail.`;
    }
    $("limits").textContent = `(at most ${s.cycle_limits.timeout_s} s of camera time and ` +
      `${s.cycle_limits.max_lens_moves} lens moves; then Failed, the lens at the sharpest position seen)`;
    filled = true;
  }
  const st = $("af-state");
  st.textContent = s.af_state;
  st.className = `state ${s.af_state}`;
  $("lens").textContent = `${fmt(s.lens.dpt, 3)} dpt (${fmt(s.lens.device, 2)} ${s.lens.unit})`;
  $("exposure").textContent = `${fmt(s.exposure_us, 0)} us (gain ${fmt(f.AnalogueGain, 2)}x)`;
  $("brisque").textContent = s.detection && s.detection.brisque !== null && s.detection.brisque !== undefined
    ? `${fmt(s.detection.brisque, 1)} (frame ${s.detection.frame})` : "not computed yet";
  $("detection").textContent = !s.detection ? "not looked for yet (no target check has run)"
    : s.detection.box ? `${s.detection.class} ${fmt(s.detection.score)} at frame ${s.detection.frame}`
      : `${s.detection.class ?? "target"} not found at frame ${s.detection.frame}`;
  $("frame-info").textContent = `#${f.FrameIndex}, contrast ${fmt(f.FocusFoM, 4)}, camera time ${fmt(f.SensorTimestamp / 1e9, 2)} s`;
  $("fps").textContent = `${fmt(s.fps, 1)} frames/s grabbed, ${s.streams} stream(s) open`;
  if (f.Truth) {
    $("truth-row").hidden = false;
    $("truth").textContent = `${f.Truth.in_focus ? "in focus" : "out of focus"} (blur ${fmt(f.Truth.blur_px, 2)} px; ` +
      `focus at ${fmt(f.Truth.in_focus_v, 2)} V); the agents never see this`;
  }
  $("error").hidden = !s.error;
  $("error").textContent = s.error ? `camera loop error: ${s.error}` : "";
  setIfIdle($("AfMode"), s.controls.AfMode);
  setIfIdle($("AfAlgorithm"), s.controls.AfAlgorithm);
  setIfIdle($("AfTarget"), s.controls.AfTarget ?? "");
  setIfIdle($("LensPosition"), s.lens.dpt);
  $("lens-value").textContent = `${fmt($("LensPosition").value, 2)} dpt`;
  if (s.sim) {
    setIfIdle($("scene"), s.sim.scene);
    setIfIdle($("distance_cm"), s.sim.distance_cm);
    setIfIdle($("illuminance_lux"), s.sim.illuminance_lux);
    $("distance-value").textContent = `${fmt($("distance_cm").value, 0)} cm`;
    $("lux-value").textContent = `${fmt($("illuminance_lux").value, 0)} lx`;
  }
  drawOverlay();
  drawHistogram();
  let html = s.current_cycle ? cycleTable(s.current_cycle, true) : "";
  html += s.cycles.slice().reverse().map((c) => cycleTable(c, false)).join("");
  $("timeline").innerHTML = html || "<p class=\"help\">No cycle yet: press Trigger autofocus.</p>";
}

async function poll() {
  try {
    const r = await fetch("/api/state", { cache: "no-store" });
    if (r.ok) {
      state = await r.json();
      render();
    }
  } catch (e) {
    say(`the server does not answer (${e}); is dasha serve still running?`);
  }
  setTimeout(poll, POLL_MS);
}

function framePoint(ev) {
  const r = $("overlay").getBoundingClientRect();
  const [w, h] = state.frame_size;
  const clamp = (v, hi) => Math.min(Math.max(v, 0), hi);
  return [clamp((ev.clientX - r.left) / scale, w), clamp((ev.clientY - r.top) / scale, h)];
}

function normBox(d) {
  return [Math.min(d[0], d[2]), Math.min(d[1], d[3]), Math.max(d[0], d[2]), Math.max(d[1], d[3])];
}

function wire() {
  $("AfMode").onchange = (e) => post("/api/controls", { AfMode: e.target.value });
  $("AfAlgorithm").onchange = (e) => post("/api/controls", { AfAlgorithm: e.target.value });
  $("set-target").onclick = () => post("/api/controls", { AfTarget: $("AfTarget").value.trim() || null });
  $("trigger").onclick = async () => {
    if (state && state.controls.AfMode !== "auto" && !(await post("/api/controls", { AfMode: "auto" }))) return;
    post("/api/trigger", {});
  };
  $("cancel").onclick = () => post("/api/controls", { AfTrigger: "cancel" });
  $("clear-window").onclick = () => post("/api/controls", { AfWindows: [] });
  $("LensPosition").onchange = (e) => post("/api/controls", { LensPosition: Number(e.target.value) });
  $("scene").onchange = (e) => post("/api/sim", { scene: e.target.value });
  $("distance_cm").onchange = (e) => post("/api/sim", { distance_cm: Number(e.target.value) });
  $("illuminance_lux").onchange = (e) => post("/api/sim", { illuminance_lux: Number(e.target.value) });
  const ov = $("overlay");
  ov.onmousedown = (e) => { if (state) { const p = framePoint(e); drag = [p[0], p[1], p[0], p[1]]; } };
  ov.onmousemove = (e) => { if (drag) { const p = framePoint(e); drag[2] = p[0]; drag[3] = p[1]; drawOverlay(); } };
  ov.onmouseup = () => {
    if (!drag) return;
    const box = normBox(drag).map(Math.round);
    drag = null;
    if (box[2] - box[0] >= 8 && box[3] - box[1] >= 8) post("/api/controls", { AfWindows: [box] });
  };
}

window.addEventListener("load", () => {
  wire();
  $("frame").src = "/stream.mjpg";  // after load: see index.html
  poll();
});
