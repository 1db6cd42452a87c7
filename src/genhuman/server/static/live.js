// GenHuman live conversation: WebRTC to the server (microphone up; the avatar's video and
// voice down) plus an "events" data channel for states, transcripts, answers and latencies.
// Plain JavaScript, no external files (works offline under the page's CSP).
"use strict";

const $ = (id) => document.getElementById(id);

// What tests (and curious people in the console) can read.
const live = {
  state: "idle", states: [], transcripts: [], answers: [], partials: [], latencies: [], errors: [],
  framesReceived: 0, videoChanged: false, videoChanges: 0, videoChangesSpeaking: 0,
  audioLevel: 0, audioLevelMax: 0, audioEnergy: 0, micLevel: 0, micLevelMax: 0, connected: false, session: null,
  micAvailable: false, audioBlocked: false, reconnects: 0, rttMs: null,
};
window.genhumanLive = live;

const RECONNECT_DELAYS_S = [1, 2, 4, 4, 4];  // backoff, at most five tries
const ICE_GATHER_TIMEOUT_MS = 5000;
const PING_EVERY_MS = 2000;
const DISCONNECT_GRACE_MS = 2000;
const STATS_EVERY_MS = 500;
const COMPARE_EVERY_MS = 200;
// After this pause in typing the draft goes to the server, which starts answering it; Enter
// on the same text then plays that answer at once.
const DRAFT_PAUSE_MS = 300;
const STATE_LABELS = { idle: "idle", connecting: "connecting…", listening: "listening", hearing: "hearing you",
                       thinking: "thinking…", speaking: "speaking", reconnecting: "reconnecting…" };

const conn = { pc: null, channel: null, remote: null, mic: null, config: null, stopping: true,
               attempt: 0, retries: 0, retryTimer: null, graceTimer: null,
               statsFrames: 0, statsFramesBase: 0, rvfcFrames: 0, lastEnergy: null };
const chat = { user: null, avatar: null, answerOpen: false, typed: null };
let muted = false;

// --- HTTP, with the same access token as the main page ---
function token() { return $("token").value || localStorage.getItem("genhuman-token") || ""; }

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (token()) headers["Authorization"] = "Bearer " + token();
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) $("token-row").hidden = false;
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : {};
  if (!response.ok) {
    const error = new Error(body.error || `request failed (${response.status})`);
    error.status = response.status;
    throw error;
  }
  return body;
}

// --- messages to the person ---
function notify(message) { $("notice").textContent = message || ""; $("notice").hidden = !message; }
function fail(message) { live.errors.push(message); notify(message); }

function setState(state) {
  live.state = state;
  live.states.push(state);
  $("state").textContent = STATE_LABELS[state] || state;
  $("state").className = "badge state-" + state;
}

function setButtons(running) {
  $("start").disabled = running;
  $("stop").disabled = !running;
  $("mute").disabled = !running || !conn.mic;
}

// --- portraits ---
async function loadPortraits() {
  const select = $("portrait");
  let data;
  try { data = await api("/v1/live/portraits"); } catch (err) { fail(err.message); return; }
  const wanted = new URLSearchParams(location.search).get("portrait");
  const names = data.portraits.map((p) => p.name);
  select.innerHTML = "";
  for (const p of data.portraits) {
    const option = new Option(p.name, p.name);
    option.dataset.url = p.url;
    select.add(option);
  }
  if (wanted && !names.includes(wanted)) notify(`There is no portrait called “${wanted}”; showing the default.`);
  select.value = names.includes(wanted) ? wanted : (data.default ?? names[0] ?? "");
  showThumb();
}

function showThumb() {
  const option = $("portrait").selectedOptions[0];
  $("thumb").hidden = !option;
  if (option) $("thumb").src = option.dataset.url;
}

$("portrait").addEventListener("change", () => {
  showThumb();
  const url = new URL(location.href);
  url.searchParams.set("portrait", $("portrait").value);
  history.replaceState(null, "", url);
  if (!conn.stopping) { teardown(); connect(); }  // a new portrait needs a new session
});

// --- microphone ---
const MIC_CONSTRAINTS = { audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true } };

function micProblem(err) {
  if (err.name === "NotAllowedError" || err.name === "SecurityError") {
    return "Microphone access was refused, so the portrait cannot hear you; you can still type below.";
  }
  if (err.name === "NotFoundError" || err.name === "OverconstrainedError") {
    return "No microphone was found; you can still type below.";
  }
  if (!navigator.mediaDevices) {
    return "This page has no microphone access (it needs https or localhost); you can still type below.";
  }
  return `The microphone could not be opened (${err.message || err.name}); you can still type below.`;
}

async function openMic() {
  if (conn.mic && conn.mic.getAudioTracks().some((t) => t.readyState === "live")) return conn.mic;
  try {
    if (!navigator.mediaDevices) throw new Error("no mediaDevices");
    conn.mic = await navigator.mediaDevices.getUserMedia(MIC_CONSTRAINTS);
  } catch (err) {
    conn.mic = null;
    const problem = micProblem(err);  // text only from here; the video still comes
    live.errors.push(problem);
    $("mic-notice").textContent = problem;
    $("mic-notice").hidden = false;
  }
  if (conn.mic) $("mic-notice").hidden = true;
  live.micAvailable = !!conn.mic;
  applyMute();
  return conn.mic;
}

function applyMute() {
  if (conn.mic) conn.mic.getAudioTracks().forEach((t) => { t.enabled = !muted; });
  $("muted").hidden = !muted;
  $("mute").textContent = muted ? "Unmute microphone" : "Mute microphone";
  $("mute").setAttribute("aria-pressed", String(muted));
}

$("mute").addEventListener("click", () => {
  muted = !muted;
  applyMute();
  send({ type: "mute", muted });
});

// --- the connection ---
function iceGathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(); } };
    const timer = setTimeout(resolve, ICE_GATHER_TIMEOUT_MS);  // send what we have rather than hang
    pc.addEventListener("icegatheringstatechange", done);
  });
}

async function connect() {
  const attempt = ++conn.attempt;  // a later connect() or stop() makes this one moot
  conn.stopping = false;
  setButtons(true);
  setState(conn.retries ? "reconnecting" : "connecting");
  try {
    conn.config = conn.config || await api("/v1/live/config");
    if (conn.config.ready === false) notify("The server is still loading its models; the first answer may be slow.");
    const mic = await openMic();
    if (attempt !== conn.attempt) return;
    setButtons(true);  // the mute button needs the microphone
    const pc = new RTCPeerConnection({ iceServers: conn.config.ice_servers || [] });
    conn.pc = pc;
    const track = mic && mic.getAudioTracks()[0];
    if (track) pc.addTransceiver(track, { direction: "sendrecv", streams: [mic] });
    else pc.addTransceiver("audio", { direction: "recvonly" });
    pc.addTransceiver("video", { direction: "recvonly" });
    openChannel(pc.createDataChannel("events"));
    const remote = new MediaStream();  // the avatar's video and voice in one stream: played in sync
    conn.remote = remote;
    pc.addEventListener("track", (event) => showRemote(remote, event));
    pc.addEventListener("connectionstatechange", () => onConnectionState(pc));
    await pc.setLocalDescription(await pc.createOffer());
    await iceGathered(pc);
    if (attempt !== conn.attempt) return;
    const answer = await api("/v1/live/offer", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer", portrait: $("portrait").value || null }),
    });
    if (attempt !== conn.attempt) return;
    live.session = answer.session;
    await pc.setRemoteDescription({ type: answer.type, sdp: answer.sdp });
  } catch (err) {
    if (attempt !== conn.attempt) return;
    if (err.status) { giveUp(err.message); return; }  // the server said no (503: full): retrying will not help now
    connectionLost(`Could not connect (${err.message}).`);
  }
}

function onConnectionState(pc) {
  if (conn.pc !== pc) return;
  if (pc.connectionState === "connected") {
    live.connected = true;
    clearTimeout(conn.graceTimer);
    if (conn.retries || $("notice").textContent.startsWith("Connection lost")) notify("");
    conn.retries = 0;
  } else if (pc.connectionState === "disconnected") {
    // Often a blip that ICE repairs by itself: say so, and start over only if it lasts.
    live.connected = false;
    setState("reconnecting");
    notify("Connection lost — reconnecting…");
    clearTimeout(conn.graceTimer);
    conn.graceTimer = setTimeout(() => { if (conn.pc === pc && pc.connectionState !== "connected") connectionLost(); },
      DISCONNECT_GRACE_MS);
  } else if (["failed", "closed"].includes(pc.connectionState)) {
    connectionLost();
  }
}

function openChannel(channel) {
  conn.channel = channel;
  channel.addEventListener("open", () => {
    if (conn.channel !== channel) return;
    $("send").disabled = false;
    if (muted) send({ type: "mute", muted });
    ping();
  });
  channel.addEventListener("close", () => { if (conn.channel === channel) connectionLost(); });
  channel.addEventListener("message", (e) => {
    let message;
    try { message = JSON.parse(e.data); } catch { return; }
    onMessage(message);
  });
}

function send(message) {
  if (conn.channel && conn.channel.readyState === "open") { conn.channel.send(JSON.stringify(message)); return true; }
  return false;
}

// The server would notice a closed connection by itself, seconds later; this frees its slot now.
function endSession() {
  if (!live.session) return;
  api(`/v1/live/sessions/${encodeURIComponent(live.session)}`, { method: "DELETE", keepalive: true }).catch(() => {});
  live.session = null;
}

function teardown() {
  conn.attempt++;
  endSession();
  clearTimeout(conn.retryTimer);
  clearTimeout(conn.graceTimer);
  const { pc, channel } = conn;
  conn.pc = null; conn.channel = null; conn.remote = null;  // first, so their close events are not taken for a drop
  if (channel) channel.close();
  if (pc) pc.close();
  conn.statsFramesBase += conn.statsFrames; conn.statsFrames = 0; conn.lastEnergy = null;
  live.connected = false;
  $("send").disabled = true;
}

function connectionLost(reason) {
  if (conn.stopping || (!conn.pc && !reason)) return;
  teardown();
  if (conn.retries >= RECONNECT_DELAYS_S.length) {
    giveUp("The connection was lost and could not be restored; press Start to try again.");
    return;
  }
  const delay = RECONNECT_DELAYS_S[conn.retries++];
  live.reconnects++;
  fail(reason ? `${reason} Reconnecting in ${delay} s…` : "Connection lost — reconnecting…");
  setState("reconnecting");
  conn.retryTimer = setTimeout(connect, delay * 1000);
}

function giveUp(message) {
  stop();
  fail(message);
}

function stop() {
  conn.stopping = true;
  teardown();
  if (conn.mic) conn.mic.getTracks().forEach((t) => t.stop());
  conn.mic = null;
  conn.retries = 0;
  $("video").srcObject = null;
  $("unmute").hidden = true;
  $("partial").textContent = "";
  setButtons(false);
  setState("idle");
}

$("token-row").addEventListener("submit", (e) => {
  e.preventDefault();
  localStorage.setItem("genhuman-token", $("token").value);
});
$("start").addEventListener("click", () => {
  notify("");
  if ($("token").value) localStorage.setItem("genhuman-token", $("token").value);
  connect();
});
$("stop").addEventListener("click", stop);
window.addEventListener("pagehide", endSession);

// --- the avatar's video and voice ---
function showRemote(remote, event) {
  if (conn.remote !== remote) return;  // a track of a connection already replaced
  if (!remote.getTracks().includes(event.track)) remote.addTrack(event.track);
  const video = $("video");
  if (video.srcObject !== remote) video.srcObject = remote;
  play();
}

function play() {
  const video = $("video");
  video.muted = false;
  video.play().catch((err) => {
    if (err.name !== "NotAllowedError") return;
    // Autoplay with sound refused: play silently and ask for the one click that unmutes.
    live.audioBlocked = true;
    video.muted = true;
    $("unmute").hidden = false;
    video.play().catch(() => {});
  });
}

$("unmute").addEventListener("click", () => {
  const video = $("video");
  video.muted = false;
  live.audioBlocked = false;
  $("unmute").hidden = true;
  video.play().catch(() => {});
});

function countFrames() {
  const video = $("video");
  if (!video.requestVideoFrameCallback) return;
  const tick = () => {
    live.framesReceived = Math.max(live.framesReceived, ++conn.rvfcFrames);
    video.requestVideoFrameCallback(tick);
  };
  video.requestVideoFrameCallback(tick);
}

// Stats: frames and the level of the voice as WebRTC decoded them.
async function pollStats() {
  const pc = conn.pc;
  if (!pc) return;
  let report;
  try { report = await pc.getStats(); } catch { return; }
  if (pc !== conn.pc) return;
  report.forEach((s) => {
    if (s.type === "media-source" && s.kind === "audio" && s.audioLevel != null) showMicLevel(s.audioLevel);
    if (s.type !== "inbound-rtp") return;
    if (s.kind === "video" && s.framesDecoded != null) {
      conn.statsFrames = s.framesDecoded;
      live.framesReceived = Math.max(live.framesReceived, conn.statsFramesBase + conn.statsFrames);
    } else if (s.kind === "audio") {
      readAudioLevel(s);
    }
  });
}

function showMicLevel(level) {
  live.micLevel = muted ? 0 : level;
  live.micLevelMax = Math.max(live.micLevelMax, live.micLevel);
  $("mic-level").value = live.micLevel;
}

function readAudioLevel(s) {
  if (s.totalAudioEnergy != null) live.audioEnergy = s.totalAudioEnergy;
  let level = s.audioLevel;
  if (level == null && s.totalAudioEnergy != null && s.totalSamplesDuration != null) {
    // RMS over the last poll from the energy integral (energy = sum of level² × duration)
    const last = conn.lastEnergy;
    conn.lastEnergy = { energy: s.totalAudioEnergy, duration: s.totalSamplesDuration };
    if (last && s.totalSamplesDuration > last.duration) {
      level = Math.sqrt((s.totalAudioEnergy - last.energy) / (s.totalSamplesDuration - last.duration));
    }
  }
  if (level == null) return;
  live.audioLevel = level;
  live.audioLevelMax = Math.max(live.audioLevelMax, level);
}

// Does the picture move? Compare small copies of successive frames; a change is a few
// pixels moving by more than codec noise.
const PROBE_SIZE = 64;
const PIXEL_STEP = 12;
const PIXELS_CHANGED = 3;
const probe = document.createElement("canvas");
probe.width = PROBE_SIZE; probe.height = PROBE_SIZE;
const probeContext = probe.getContext("2d", { willReadFrequently: true });
let previousPixels = null;

function changedPixels(a, b) {
  let changed = 0;
  for (let i = 0; i < a.length; i += 4) {
    if (Math.abs(a[i] - b[i]) + Math.abs(a[i + 1] - b[i + 1]) + Math.abs(a[i + 2] - b[i + 2]) > PIXEL_STEP) changed++;
  }
  return changed;
}

function compareFrames() {
  const video = $("video");
  if (!conn.pc || video.readyState < 2 || !video.videoWidth) { previousPixels = null; return; }
  probeContext.drawImage(video, 0, 0, PROBE_SIZE, PROBE_SIZE);
  const pixels = probeContext.getImageData(0, 0, PROBE_SIZE, PROBE_SIZE).data;
  if (previousPixels && changedPixels(pixels, previousPixels) >= PIXELS_CHANGED) {
    live.videoChanged = true;
    live.videoChanges++;
    if (live.state === "speaking") live.videoChangesSpeaking++;
  }
  previousPixels = pixels;
}

function showRoundTrip(sentAt) {
  live.rttMs = Math.round(performance.now() - sentAt);
  $("rtt").textContent = `round trip ${live.rttMs} ms`;
}

function ping() { send({ type: "ping", t: performance.now() }); }

// --- the conversation ---
function onMessage(m) {
  switch (m.type) {
    case "state": setState(m.state); break;
    case "partial": live.partials.push(m.text); $("partial").textContent = m.text; break;
    case "transcript": onTranscript(m.text); break;
    case "answer": onAnswer(m.text, m.final); break;
    case "interrupted": onInterrupted(); break;
    case "latency": onLatency(m); break;
    case "pong": showRoundTrip(m.t); break;
    case "error": fail(m.message); break;
  }
}

function bubble(who, text) {
  const item = document.createElement("li");
  item.className = "turn " + who;
  const name = document.createElement("span");
  name.className = "who";
  name.textContent = who === "user" ? "You" : "Portrait";
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  item.append(name, body);
  $("log").append(item);
  $("no-turns").hidden = true;
  item.scrollIntoView({ block: "nearest" });
  return item;
}

function startTurn(text) {
  chat.answerOpen = false;
  chat.avatar = null;
  chat.user = bubble("user", text);
}

function onTranscript(text) {
  live.transcripts.push(text);
  $("partial").textContent = "";
  if (chat.typed !== null && chat.typed === text) { chat.typed = null; return; }  // the server echoing typed text
  chat.typed = null;
  if (text) startTurn(text);
}

function onAnswer(text, final) {
  if (!chat.answerOpen) {
    live.answers.push(text);
    chat.avatar = bubble("avatar", text);
    chat.answerOpen = true;
  } else {
    live.answers[live.answers.length - 1] = text;
    chat.avatar.querySelector(".text").textContent = text;
  }
  if (final) chat.answerOpen = false;
}

function onInterrupted() {
  if (chat.avatar) chat.avatar.classList.add("interrupted");
  chat.answerOpen = false;
}

const LATENCY_FIELDS = ["speech_end_to_audio_ms", "text_to_frame_ms", "asr_ms", "llm_first_ms", "tts_first_ms"];

function onLatency(m) {
  live.latencies.push(m);
  const body = $("latency").querySelector("tbody");
  let row = body.querySelector(`tr[data-turn="${Number(m.turn)}"]`);
  if (!row) { row = body.insertRow(); row.dataset.turn = String(Number(m.turn)); }
  row.innerHTML = "";
  row.insertCell().textContent = String(m.turn);
  for (const field of LATENCY_FIELDS) {
    row.insertCell().textContent = typeof m[field] === "number" ? String(Math.round(m[field])) : "–";
  }
}

let draftTimer = null;
$("text").addEventListener("input", () => {
  clearTimeout(draftTimer);
  const text = $("text").value.trim();
  if (text) draftTimer = setTimeout(() => send({ type: "draft", text }), DRAFT_PAUSE_MS);
});

$("say").addEventListener("submit", (e) => {
  e.preventDefault();
  clearTimeout(draftTimer);
  const text = $("text").value.trim();
  if (!text) return;
  if (!send({ type: "text", text })) { notify("Press Start first, then type."); return; }
  chat.typed = text;
  startTurn(text);
  $("text").value = "";
});

loadPortraits();
countFrames();
setInterval(pollStats, STATS_EVERY_MS);
setInterval(compareFrames, COMPARE_EVERY_MS);
setInterval(ping, PING_EVERY_MS);
