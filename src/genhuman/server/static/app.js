// GenHuman web page: plain JavaScript, no external files (works offline).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { image: null, recorded: null, tab: "upload", current: null, timer: null };

function token() { return $("token").value || localStorage.getItem("genhuman-token") || ""; }

async function api(path, options = {}) {
  const headers = options.headers || {};
  if (token()) headers["Authorization"] = "Bearer " + token();
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) $("token-row").hidden = false;
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : {};
  if (!response.ok) throw new Error(body.error || `request failed (${response.status})`);
  return body;
}

function showError(message) { $("error").textContent = message || ""; $("error").hidden = !message; }

// --- portrait: click or drop ---
function setImage(file) {
  if (!file) return;
  state.image = file;
  $("preview").src = URL.createObjectURL(file);
  $("preview").hidden = false;
  $("drop-text").innerHTML = `${file.name}<br><small>click or drop to change</small>`;
}
$("image").addEventListener("change", (e) => setImage(e.target.files[0]));
const drop = $("drop");
["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
drop.addEventListener("drop", (e) => setImage(e.dataTransfer.files[0]));

// --- speech: upload, record or text ---
document.querySelectorAll(".tab").forEach((tab) => tab.addEventListener("click", () => {
  state.tab = tab.dataset.tab;
  document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t === tab));
  document.querySelectorAll(".pane").forEach((p) => { p.hidden = p.dataset.pane !== state.tab; });
}));
$("audio").addEventListener("change", (e) => {
  const file = e.target.files[0];
  $("audio-preview").hidden = !file;
  if (file) $("audio-preview").src = URL.createObjectURL(file);
});

let recorder = null;
$("record").addEventListener("click", async () => {
  if (recorder && recorder.state === "recording") { recorder.stop(); return; }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.ondataavailable = (e) => chunks.push(e.data);
    recorder.onstop = () => {
      stream.getTracks().forEach((t) => t.stop());
      state.recorded = new Blob(chunks, { type: recorder.mimeType || "audio/webm" });
      $("record-preview").src = URL.createObjectURL(state.recorded);
      $("record-preview").hidden = false;
      $("record").textContent = "● Record again";
      $("record-status").textContent = "Recorded.";
    };
    recorder.start();
    $("record").textContent = "■ Stop";
    $("record-status").textContent = "Recording…";
  } catch (err) {
    $("record-status").textContent = "Microphone not available: " + err.message;
  }
});

// --- options and submission ---
async function loadEngines() {
  try {
    const data = await api("/v1/engines");
    const select = $("engine");
    select.innerHTML = "";
    for (const e of data.engines) {
      const option = new Option(e.available ? e.name : `${e.name} (unavailable)`, e.name);
      option.disabled = !e.available;
      option.selected = e.name === data.default;
      select.add(option);
    }
  } catch (err) { showError(err.message); }
}

$("job-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  showError("");
  if ($("token").value) localStorage.setItem("genhuman-token", $("token").value);
  const form = new FormData();
  if (!state.image) return showError("Choose a portrait first.");
  form.append("image", state.image, state.image.name);
  if (state.tab === "upload") {
    const file = $("audio").files[0];
    if (!file) return showError("Choose an audio file, record, or type text.");
    form.append("audio", file, file.name);
  } else if (state.tab === "record") {
    if (!state.recorded) return showError("Record some speech first.");
    form.append("audio", state.recorded, "recording.webm");
  } else {
    if (!$("text").value.trim()) return showError("Type something to say.");
    form.append("text", $("text").value);
  }
  form.append("engine", $("engine").value);
  for (const name of ["fps", "max_size", "seed", "steps", "cfg", "head_motion", "blink_rate", "mouth_scale", "expression"]) if ($(name).value) form.append(name, $(name).value);
  for (const name of ["accelerated", "paste_back"]) if ($(name).checked) form.append(name, "true");
  $("submit").disabled = true;
  try {
    const job = await api("/v1/jobs", { method: "POST", body: form });
    follow(job.id);
  } catch (err) { showError(err.message); }
  finally { $("submit").disabled = false; }
});

// --- the current job: live progress, then the video ---
function follow(id) {
  state.current = id;
  $("current").hidden = false;
  $("video").hidden = true; $("download").hidden = true;
  $("video").removeAttribute("src");
  clearTimeout(state.timer);
  poll();
}

async function poll() {
  const id = state.current;
  let job;
  try { job = await api(`/v1/jobs/${id}`); } catch (err) { showError(err.message); return; }
  if (id !== state.current) return;
  $("status").textContent = job.status;
  $("status").className = "badge " + job.status;
  $("progress").value = job.progress;
  $("message").textContent = job.error || describe(job);
  $("cancel").hidden = !["queued", "running"].includes(job.status);
  if (job.status === "succeeded") {
    const auth = token() ? `?token=${encodeURIComponent(token())}` : "";
    $("video").src = job.video_url + auth;
    $("video").hidden = false;
    $("download").href = job.video_url + (auth ? auth + "&" : "?") + "download=1";
    $("download").hidden = false;
    refreshJobs();
  } else if (["failed", "cancelled"].includes(job.status)) {
    refreshJobs();
  } else {
    state.timer = setTimeout(poll, 500);
  }
}
function describe(job) {
  const r = job.result;
  if (job.status === "succeeded") {
    return `${r.frames} frames, ${r.width}×${r.height}, ${r.seconds.toFixed(1)} s of video, made in ${job.timings.run.toFixed(1)} s`;
  }
  if (job.status === "queued" && job.queue_position) return `${job.queue_position} job(s) ahead`;
  return job.message;
}
$("cancel").addEventListener("click", () => api(`/v1/jobs/${state.current}/cancel`, { method: "POST" }).catch((e) => showError(e.message)));

// --- recent jobs ---
async function refreshJobs() {
  let data;
  try { data = await api("/v1/jobs?limit=10"); } catch { return; }
  const body = $("jobs").querySelector("tbody");
  body.innerHTML = "";
  $("no-jobs").hidden = data.jobs.length > 0;
  for (const job of data.jobs) {
    const row = body.insertRow();
    row.insertCell().textContent = new Date(job.created_at).toLocaleTimeString();
    row.insertCell().textContent = job.engine;
    const status = document.createElement("span");
    status.className = "badge " + job.status;
    status.textContent = job.status === "running" ? `running ${Math.round(job.progress * 100)}%` : job.status;
    row.insertCell().append(status);
    row.insertCell().textContent = job.timings.run != null ? `${job.timings.run.toFixed(1)} s` : "";
    const actions = row.insertCell();
    const open = document.createElement("button");
    open.textContent = "Open";
    open.onclick = () => follow(job.id);
    const remove = document.createElement("button");
    remove.textContent = "Delete";
    remove.disabled = job.status === "running";
    remove.onclick = () => api(`/v1/jobs/${job.id}`, { method: "DELETE" }).then(refreshJobs).catch((e) => showError(e.message));
    actions.append(open, " ", remove);
  }
}

// Ranges and help of the option inputs come from the server's option specs (its OpenAPI schema).
async function loadOptionSpecs() {
  try {
    const doc = await (await fetch("/openapi.json")).json();
    const ref = doc.paths["/v1/jobs"].post.requestBody.content["multipart/form-data"].schema.$ref;
    const props = doc.components.schemas[ref.split("/").pop()].properties;
    for (const [name, spec] of Object.entries(props)) {
      const input = $(name);
      if (!input || input.tagName !== "INPUT") continue;
      if (spec.description) input.title = spec.description;
      if (input.type === "number") {
        if (spec.minimum != null) input.min = spec.minimum;
        if (spec.maximum != null) input.max = spec.maximum;
      }
    }
  } catch { /* the static ranges in the page stay */ }
}

loadEngines();
loadOptionSpecs();
refreshJobs();
setInterval(refreshJobs, 5000);
