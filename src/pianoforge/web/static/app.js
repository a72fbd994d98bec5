// pianoforge serve: the page. No framework; talks to the JSON API in pianoforge/web/app.py.
"use strict";

const $ = (id) => document.getElementById(id);
const POLL_MS = 250;

function option(select, value, label) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = label;
  select.appendChild(o);
}

function showError(el, text) {
  el.textContent = text || "";
  el.hidden = !text;
}

function setProgress(box, job) {
  box.hidden = false;
  const bar = box.querySelector("progress");
  bar.value = job.fraction || 0;
  const where = job.queue_position ? ` (place ${job.queue_position} in the queue)` : "";
  box.querySelector("span").textContent = `${job.stage}${where} - ${job.elapsed_s.toFixed(1)} s`;
}

async function readJson(resp) {
  try { return await resp.json(); } catch (e) { return { error: `error: the server answered ${resp.status}` }; }
}

// Submit a job, then poll it until it ends; resolves with its result, rejects with its one-line error.
async function runJob(url, init, progressBox) {
  const resp = await fetch(url, init);
  let job = await readJson(resp);
  if (!resp.ok) throw new Error(job.error);
  while (job.state === "queued" || job.state === "running") {
    setProgress(progressBox, job);
    await new Promise((r) => setTimeout(r, POLL_MS));
    const r = await fetch(`/api/jobs/${job.id}`);
    job = await readJson(r);
    if (!r.ok) throw new Error(job.error);
  }
  setProgress(progressBox, job);
  if (job.state === "error") throw new Error(job.error);
  return job;
}

// ------------------------------------------------------------------------------------------ options
async function loadOptions() {
  const opts = await (await fetch("/api/options")).json();
  for (const c of opts.checkpoints) {
    option(c.kind === "perform" ? $("perform-checkpoint") : $("gan-checkpoint"), c.id, c.label);
  }
  option($("phase"), "", "model's own");  // a sampler writes its waveform; a magnitude model has its preset's
  for (const p of opts.phases) option($("phase"), p, p);
  option($("rate"), "", "model's own");
  for (const r of opts.rates) option($("rate"), String(r), `${r} Hz`);
  for (const e of opts.examples) option($("example"), e, e);
  $("gan-n").max = opts.max_clips;
  $("limits").textContent = `Uploads up to ${(opts.max_upload_bytes / 1e6).toFixed(1)} MB and ` +
    `${opts.max_seconds} s of audio.`;
  if (!$("gan-checkpoint").options.length) $("generate").disabled = true;
}

// ------------------------------------------------------------------------------------------ perform
let performJob = null;

async function render(ev) {
  ev.preventDefault();
  const file = $("midi-file").files[0];
  const example = $("example").value;
  showError($("perform-error"), "");
  if (!file && !example) { showError($("perform-error"), "error: choose a MIDI file or an example"); return; }
  const q = new URLSearchParams({ checkpoint: $("perform-checkpoint").value, phase: $("phase").value,
                                  rate: $("rate").value });
  let init = { method: "POST" };
  if (file) {
    q.set("name", file.name);
    init = { method: "POST", body: file, headers: { "Content-Type": "application/octet-stream" } };
  } else {
    q.set("example", example);
  }
  $("render").disabled = true;
  $("perform-result").hidden = true;
  $("judge-result").textContent = "";
  try {
    const job = await runJob(`/api/perform?${q}`, init, $("perform-progress"));
    performJob = job.id;
    showPerform(job.result);
  } catch (e) {
    showError($("perform-error"), e.message);
    $("perform-progress").hidden = true;
  } finally {
    $("render").disabled = false;
  }
}

function showPerform(r) {
  const f = r.files;
  $("neural-audio").src = f.neural;
  $("reference-audio").src = f.reference;
  $("figure4").src = f.figure4;
  $("download-neural").href = f.neural;
  $("download-reference").href = f.reference;
  $("download-figure4").href = f.figure4;
  $("perform-stats").textContent =
    `${r.name}: ${r.seconds.toFixed(2)} s of audio at ${r.sample_rate} Hz, rendered in ${r.render_s.toFixed(2)} s ` +
    `(${r.realtime_factor.toFixed(1)}x real time); ${r.notes} notes; ${r.checkpoint}, phase ${r.phase}`;
  $("ab").textContent = "A/B: play neural";
  $("perform-result").hidden = false;
}

// One click: start the neural render, or switch to the other player at the same moment.
function abSwitch() {
  const n = $("neural-audio"), ref = $("reference-audio");
  const playing = !n.paused ? n : !ref.paused ? ref : null;
  const next = playing === n ? ref : n;
  const other = next === n ? ref : n;
  const t = playing ? playing.currentTime : other.currentTime || 0;
  other.pause();
  next.currentTime = Math.min(t, next.duration || t);
  next.play();
  $("ab").textContent = next === n ? "A/B: switch to reference" : "A/B: switch to neural";
  $("ab-state").textContent = `playing ${next === n ? "neural" : "FluidSynth reference"}`;
}

async function judge() {
  if (!performJob) return;
  $("judge").disabled = true;
  $("judge-result").textContent = "";
  try {
    const job = await runJob(`/api/perform/${performJob}/judge`, { method: "POST" }, $("judge-progress"));
    const r = job.result;
    $("judge-result").textContent = `onset note-F1: neural ${r.neural.onset_f1.toFixed(3)}, ` +
      `FluidSynth ${r.reference.onset_f1.toFixed(3)} (ratio ${r.ratio.toFixed(3)})`;
  } catch (e) {
    $("judge-result").textContent = e.message;
  } finally {
    $("judge").disabled = false;
    $("judge-progress").hidden = true;
  }
}

// ---------------------------------------------------------------------------------------- improvise
function clipFigure(c) {
  const fig = document.createElement("figure");
  const cap = document.createElement("figcaption");
  cap.textContent = c.label;
  const a = document.createElement("a");
  a.href = c.audio;
  a.download = "";
  a.textContent = "download WAV";
  cap.appendChild(a);
  const audio = document.createElement("audio");
  audio.controls = true;
  audio.src = c.audio;
  const img = document.createElement("img");
  img.src = c.spectrogram;
  img.alt = `spectrogram, ${c.label}`;
  fig.append(cap, audio, img);
  return fig;
}

async function generate(ev) {
  ev.preventDefault();
  showError($("improvise-error"), "");
  const body = { checkpoint: $("gan-checkpoint").value, n: Number($("gan-n").value),
                 seed: Number($("gan-seed").value), interpolate: $("gan-interpolate").checked,
                 seed_b: Number($("gan-seed-b").value) };
  $("generate").disabled = true;
  $("clips").replaceChildren();
  $("improvise-sequence").hidden = true;
  $("improvise-stats").textContent = "";
  try {
    const job = await runJob("/api/improvise", { method: "POST", body: JSON.stringify(body),
                                                 headers: { "Content-Type": "application/json" } },
                             $("improvise-progress"));
    const r = job.result;
    $("improvise-stats").textContent = `${r.clips.length} clips of ${r.seconds.toFixed(2)} s at ` +
      `${r.sample_rate} Hz in ${r.wall_s.toFixed(2)} s; ${r.checkpoint}`;
    $("clips").replaceChildren(...r.clips.map(clipFigure));
    if (r.sequence) {
      const p = $("improvise-sequence");
      p.querySelector("audio").src = r.sequence;
      p.querySelector("a").href = r.sequence;
      p.hidden = false;
    }
  } catch (e) {
    showError($("improvise-error"), e.message);
    $("improvise-progress").hidden = true;
  } finally {
    $("generate").disabled = false;
  }
}

// ------------------------------------------------------------------------------------------- wiring
function showTab(name) {
  for (const t of document.querySelectorAll(".tab")) t.classList.toggle("active", t.dataset.panel === name);
  for (const p of document.querySelectorAll(".panel")) p.classList.toggle("active", p.id === name);
}

document.addEventListener("DOMContentLoaded", () => {
  for (const t of document.querySelectorAll(".tab")) t.addEventListener("click", () => showTab(t.dataset.panel));
  $("perform-form").addEventListener("submit", render);
  $("improvise-form").addEventListener("submit", generate);
  $("ab").addEventListener("click", abSwitch);
  $("judge").addEventListener("click", judge);
  $("midi-file").addEventListener("change", () => { if ($("midi-file").files.length) $("example").value = ""; });
  $("example").addEventListener("change", () => { if ($("example").value) $("midi-file").value = ""; });
  loadOptions().catch((e) => showError($("perform-error"), `error: cannot load the options (${e.message})`));
});
