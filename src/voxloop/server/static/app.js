"use strict";
// The voxloop page: the microphone to the server over one WebSocket (protocol 1, docs/protocol.md),
// the agent's voice back, live transcripts, and each turn's latency as a small bar.

const PROTOCOL = 1;
const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token") || "";
const PHASES = {
  loading: "Loading the models…",
  ready: "Ready",
  connecting: "Connecting…",
  live: "Listening",
  hearing: "Hearing you…",
  thinking: "Thinking…",
  speaking: "Speaking",
  error: "Something went wrong",
};

// What tests and the curious can read: window.voxloop.stats
const stats = { micCodec: "", voiceCodec: "", sentBytes: 0, receivedBytes: 0, sentFrames: 0, receivedSamples: 0, playedSamples: 0, buffered: 0, peak: 0, outputRate: 0, turns: 0, endpointMs: null };
window.voxloop = { stats };

let server = { auth_required: false };
let live = null; // the conversation under way
let mode = "open"; // or "ptt"
let pttDown = false;
let current = null; // the turn the user is speaking now
let reveals = []; // agent text waiting for its audio to play: {turn, text, position}
const turns = new Map(); // turn id -> turn

// -- small helpers -----------------------------------------------------------------------------
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function phase(name, text) {
  document.body.dataset.phase = name;
  if (!text && name === "live" && mode === "ptt" && !pttDown) text = "Hold to talk";
  $("status-text").textContent = text || PHASES[name];
}

let toastTimer = 0;
function toast(message, bad = false, ms = 5000) {
  const t = $("toast");
  t.textContent = message;
  t.className = bad ? "toast bad" : "toast";
  t.hidden = false;
  clearTimeout(toastTimer);
  if (ms) toastTimer = setTimeout(() => (t.hidden = true), ms);
}

function scrollDown() {
  const log = $("log");
  log.scrollTop = log.scrollHeight;
}

// -- readiness ---------------------------------------------------------------------------------
async function waitUntilReady() {
  phase("loading");
  for (;;) {
    try {
      // with the key, /readyz says why it is not ready (without it: only whether it is)
      const headers = token ? { Authorization: "Bearer " + token } : {};
      const r = await fetch("/readyz", { cache: "no-store", headers });
      server = await r.json();
      if (server.ready) break;
      if (server.error) {
        phase("error", "The models could not be loaded");
        toast(server.error, true, 0);
        return;
      }
      phase("loading");
    } catch {
      phase("loading", "Waiting for the server…");
    }
    await new Promise((ok) => setTimeout(ok, 1000));
  }
  phase("ready");
  $("start").disabled = false;
  if (server.auth_required && !token) {
    toast("This server needs an API key: open this page as " + location.pathname + "?token=YOUR_KEY", true, 0);
  }
}

// -- starting and ending -----------------------------------------------------------------------
async function start() {
  $("start").disabled = true;
  $("toast").hidden = true;
  phase("connecting", "Starting the microphone…");
  const s = { ws: null, started: false, pending: [], ending: false, play: null, capCtx: null, stream: null };
  live = s;
  stats.micCodec = stats.voiceCodec = ""; // chosen once the microphone is open
  try {
    if (!navigator.mediaDevices || !window.isSecureContext) throw new Error("insecure");
    s.play = await openPlayer(); // inside the click: browsers allow sound after a gesture
    s.capCtx = await captureContext(16000); // the worklet is loaded before the microphone opens
    // Connect while the microphone opens, unless the browser is about to ask the user (who may
    // take longer to answer than the server waits for an idle connection).
    if (await micGranted()) openSocket(s);
    const aec = $("aec").checked;
    s.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: aec, noiseSuppression: aec, autoGainControl: aec },
    });
    await connectMic(s);
    await chooseCodecs(s);
    s.micReady = true;
    if (s.ws) sendStart(s);
    else openSocket(s);
  } catch (e) {
    fail(s, micMessage(e));
  }
}

async function micGranted() {
  try {
    return (await navigator.permissions.query({ name: "microphone" })).state === "granted";
  } catch {
    return false;
  }
}

function micMessage(e) {
  if (e && e.message === "insecure") {
    return "The microphone only works on a secure page: open this page as http://localhost:PORT on the server's machine, or serve it over https.";
  }
  if (e && e.name === "NotAllowedError") return "The microphone was blocked. Allow it (see the address bar), then press Start again.";
  if (e && e.name === "NotFoundError") return "No microphone was found. Plug one in, then press Start again.";
  return "Could not start the audio: " + (e && e.message ? e.message : e);
}

function end() {
  const s = live;
  if (s && s.ws && s.ws.readyState === WebSocket.OPEN) {
    s.ending = true;
    s.ws.send(JSON.stringify({ type: "stop" }));
  } else if (s) {
    teardown(s);
  }
}

function fail(s, message) {
  toast(message, true, 0);
  teardown(s);
}

function teardown(s) {
  if (s.micOpus) s.micOpus.close();
  if (s.voiceOpus) s.voiceOpus.close();
  if (s.stream) s.stream.getTracks().forEach((t) => t.stop());
  if (s.capCtx) s.capCtx.close().catch(() => {});
  if (s.play) s.play.ctx.close().catch(() => {});
  if (s.ws && s.ws.readyState <= WebSocket.OPEN) s.ws.close();
  if (live === s) live = null;
  current = null;
  reveals = [];
  pttDown = false;
  showControls();
  $("level").style.width = "0";
  if (document.body.dataset.phase !== "error") phase("ready");
  $("start").disabled = false;
}

function showControls() {
  const on = !!(live && live.started);
  $("start").hidden = on;
  $("end").hidden = !on;
  $("interrupt").hidden = !on;
  $("talk").hidden = !(on && mode === "ptt");
  $("talk").classList.toggle("on", pttDown);
  document.querySelectorAll("#settings input, #settings textarea").forEach((i) => (i.disabled = !!live));
}

// -- audio -------------------------------------------------------------------------------------
async function openPlayer() {
  let ctx;
  try {
    ctx = new AudioContext({ sampleRate: 24000, latencyHint: "interactive" });
  } catch {
    ctx = new AudioContext({ latencyHint: "interactive" });
  }
  await ctx.audioWorklet.addModule("/static/worklet.js");
  const node = new AudioWorkletNode(ctx, "vox-player", {
    numberOfInputs: 0,
    numberOfOutputs: 1,
    outputChannelCount: [1],
  });
  node.connect(ctx.destination);
  node.port.onmessage = (e) => onPlayerReport(e.data);
  await ctx.resume();
  return { ctx, node, position: 0, buffered: 0, lastReport: 0 };
}

async function captureContext(rate) {
  const ctx = rate
    ? new AudioContext({ sampleRate: rate, latencyHint: "interactive" })
    : new AudioContext({ latencyHint: "interactive" });
  await ctx.audioWorklet.addModule("/static/worklet.js");
  return ctx;
}

async function connectMic(s) {
  let src;
  try {
    src = s.capCtx.createMediaStreamSource(s.stream);
  } catch {
    // Some browsers cannot resample a microphone: take its own rate, the server resamples.
    await s.capCtx.close();
    s.capCtx = await captureContext(0);
    src = s.capCtx.createMediaStreamSource(s.stream);
  }
  const node = new AudioWorkletNode(s.capCtx, "vox-capture", {
    numberOfInputs: 1,
    numberOfOutputs: 1,
    outputChannelCount: [1],
    channelCount: 1,
    channelCountMode: "explicit",
  });
  node.port.onmessage = (e) => onMicFrame(s, e.data);
  const silent = new GainNode(s.capCtx, { gain: 0 }); // keeps the node running, makes no sound
  src.connect(node).connect(silent).connect(s.capCtx.destination);
  await s.capCtx.resume();
  s.capNode = node;
  s.inputRate = s.capCtx.sampleRate;
  setMuted();
}

function setMuted() {
  const muted = mode === "ptt" && !pttDown;
  document.querySelector(".meter").classList.toggle("muted", muted);
  if (live && live.capNode) live.capNode.port.postMessage({ muted });
  if (document.body.dataset.phase === "live") phase("live");
}

// Opus each way where WebCodecs can (opus.js), else PCM16; decided before `start` declares them.
async function chooseCodecs(s) {
  const trouble = (e) => toast("The audio codec failed: " + (e && e.message ? e.message : e), true);
  s.micOpus = await opusMicEncoder(s.inputRate, (packet) => sendMic(s, packet), trouble);
  const out = Math.min(48000, Math.max(8000, Math.round(s.play.ctx.sampleRate)));
  s.voiceOpus = await opusVoiceDecoder(out, (pcm) => toPlayer(s, { type: "audio", buffer: pcm }, [pcm]), trouble);
  stats.micCodec = s.micOpus ? "opus" : "pcm16";
  stats.voiceCodec = s.voiceOpus ? "opus" : "pcm16";
}

function sendMic(s, data) {
  if (s.started && s.ws.readyState === WebSocket.OPEN) {
    s.ws.send(data);
    stats.sentFrames++;
    stats.sentBytes += data.byteLength;
  } else if (!s.started) {
    s.pending.push(data); // until the session has started; at most 1 s (the server allows 2 s ahead)
    if (s.pending.length > 50) s.pending.shift();
  }
}

function onMicFrame(s, data) {
  if (data instanceof ArrayBuffer) {
    if (!stats.micCodec) return; // the codec is being chosen (a few milliseconds after the mic opens)
    if (s.micOpus) s.micOpus.encode(data);
    else sendMic(s, data);
  } else if (typeof data.level === "number") {
    const pct = Math.min(100, Math.max(0, (20 * Math.log10(data.level + 1e-6) + 60) * (100 / 50)));
    $("level").style.width = pct.toFixed(0) + "%";
  }
}

function onPlayerReport(d) {
  const s = live;
  stats.playedSamples = d.played;
  stats.buffered = d.buffered;
  stats.peak = d.peak;
  if (!s) return;
  const p = s.play;
  const moved = d.position !== p.position;
  p.position = d.position;
  p.buffered = d.buffered;
  const now = performance.now();
  if (moved && s.started && s.ws.readyState === WebSocket.OPEN && (d.buffered === 0 || now - p.lastReport >= 100)) {
    p.lastReport = now;
    s.ws.send(JSON.stringify({ type: "playback", position: d.position }));
  }
  revealDue();
  $("interrupt").disabled = d.buffered === 0;
  if (d.buffered === 0 && document.body.dataset.phase === "speaking") phase("live");
}

function interrupt() {
  const s = live;
  if (!s || !s.started) return;
  s.play.node.port.postMessage({ type: "cut" }); // silent now; the server confirms with audio_stop
  reveals = [];
  // the freshest playhead first (reports are otherwise sent at most every 100 ms): it decides
  // what the server records as heard
  s.ws.send(JSON.stringify({ type: "playback", position: s.play.position }));
  s.ws.send(JSON.stringify({ type: "interrupt" }));
}

// -- the socket --------------------------------------------------------------------------------
function settings() {
  const out = { end_silence_ms: Number($("silence").value), interruptions: $("barge").checked };
  const prompt = $("prompt").value.trim();
  if (prompt) out.system_prompt = prompt;
  return out;
}

function openSocket(s) {
  phase("connecting");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${location.host}/v1/agent` + (token ? `?token=${encodeURIComponent(token)}` : "");
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  s.ws = ws;
  ws.onopen = () => sendStart(s);
  ws.onmessage = (e) => {
    if (typeof e.data === "string") onEvent(s, JSON.parse(e.data));
    else onAudio(s, e.data);
  };
  ws.onclose = (e) => onClose(s, e);
}

function sendStart(s) {
  if (s.startSent || !s.micReady || s.ws.readyState !== WebSocket.OPEN) return;
  s.startSent = true;
  const out = Math.min(48000, Math.max(8000, Math.round(s.play.ctx.sampleRate)));
  s.ws.send(JSON.stringify({
    type: "start",
    protocol: PROTOCOL,
    input_sample_rate: s.inputRate,
    output_sample_rate: out,
    input_codec: stats.micCodec,
    output_codec: stats.voiceCodec,
    settings: settings(),
  }));
}

function onAudio(s, data) {
  stats.receivedBytes += data.byteLength;
  if (s.voiceOpus) s.voiceOpus.decode(data);
  else toPlayer(s, { type: "audio", buffer: data }, [data]);
}

// To the player, in the order the server sent it: with Opus, after every packet before it is decoded.
function toPlayer(s, msg, transfer = []) {
  const post = () => {
    if (msg.type === "audio") stats.receivedSamples += msg.buffer.byteLength / 2;
    s.play.node.port.postMessage(msg, transfer);
  };
  if (s.voiceOpus && msg.type !== "audio") s.voiceOpus.after(post);
  else post();
}

function onClose(s, e) {
  if (live !== s) return;
  if (!s.started && !s.refused) {
    toast(
      server.auth_required
        ? "Could not start a session. This server needs an API key: open this page as " + location.pathname + "?token=YOUR_KEY"
        : "Could not reach the voice server. Is it still running?",
      true,
      0,
    );
  } else if (s.started && !s.ending && !s.refused) {
    toast("The connection closed" + (e.reason ? ": " + e.reason : "") + ". Press Start to talk again.", true, 0);
  }
  teardown(s);
}

function onEvent(s, m) {
  switch (m.type) {
    case "started":
      s.started = true;
      stats.outputRate = m.output_sample_rate;
      stats.micCodec = m.input_codec || "pcm16";
      stats.voiceCodec = m.output_codec || "pcm16";
      for (const f of s.pending) sendMic(s, f);
      s.pending = [];
      showControls();
      phase("live");
      break;
    case "speech_started":
      current = current || newTurn();
      phase("hearing");
      break;
    case "partial_transcript":
      current = current || newTurn();
      current.part.textContent = m.text;
      scrollDown();
      break;
    case "speech_ended":
      phase("thinking");
      break;
    case "final_transcript":
      onFinal(m);
      break;
    case "agent_speech": {
      const t = turns.get(m.turn_id);
      if (t) reveals.push({ turn: t, text: m.text, position: m.position });
      revealDue();
      break;
    }
    case "audio_stop":
      toPlayer(s, { type: "stop" });
      reveals = [];
      break;
    case "audio_pause": // the agent heard you: its voice holds until it knows if you took the turn
      toPlayer(s, { type: "pause" });
      phase("hearing", "Listening…");
      break;
    case "audio_resume":
      toPlayer(s, { type: "resume" });
      phase("speaking");
      break;
    case "interrupted":
      onInterrupted(m);
      break;
    case "turn_dropped":
      onDropped(m);
      break;
    case "turn_completed":
      stats.turns++;
      stats.endpointMs = m.turn.endpoint_ms;
      drawTiming(m.turn);
      if (document.body.dataset.phase !== "hearing" && s.play.buffered === 0) phase("live");
      break;
    case "error":
      if (m.fatal) s.refused = true;
      toast(m.message, true, m.fatal ? 0 : 5000);
      break;
    default: // agent_paused/resumed (audio_pause/resume did it), playback_finished, turn_decided, stopped, pong
      break;
  }
}

// -- the conversation on screen ----------------------------------------------------------------
function newTurn() {
  const intro = $("intro");
  if (intro) intro.remove();
  const t = { id: null, el: el("section", "turn"), user: el("div", "bubble user"), agent: null, said: [] };
  t.user.setAttribute("aria-label", "You said");
  t.fin = el("span", "final");
  t.part = el("span", "partial");
  t.user.append(t.fin, t.part);
  t.el.append(t.user);
  $("log").append(t.el);
  scrollDown();
  return t;
}

function agentBubble(t) {
  if (!t.agent) {
    t.agent = el("div", "bubble agent waiting");
    t.agent.setAttribute("aria-label", "The agent said");
    t.el.append(t.agent);
  }
  return t.agent;
}

function onFinal(m) {
  const t = current || newTurn();
  current = null;
  if (m.revises) dropRevised(t);
  t.id = m.turn_id;
  turns.set(m.turn_id, t);
  t.fin.textContent = m.text;
  t.part.textContent = "";
  if (m.text) agentBubble(t);
  scrollDown();
}

// The user had only paused: this turn's words include the last turn's, heard again. That turn's
// bubble goes, unless the agent had already said something to it.
function dropRevised(t) {
  for (const [id, o] of turns) {
    if (o !== t && o.el === t.el.previousElementSibling && !o.said.length) {
      o.el.remove();
      turns.delete(id);
    }
  }
}

function revealDue() {
  const position = live && live.play ? live.play.position : 0;
  while (reveals.length && reveals[0].position < position) {
    const r = reveals.shift();
    const b = agentBubble(r.turn);
    b.classList.remove("waiting");
    r.turn.said.push(r.text);
    b.textContent = r.turn.said.join(" ");
    phase("speaking");
    scrollDown();
  }
}

function onInterrupted(m) {
  const t = turns.get(m.turn_id);
  if (!t) return;
  const b = agentBubble(t);
  b.classList.remove("waiting");
  b.textContent = m.heard_text || "";
  b.append(el("span", "cut", "interrupted"));
}

function onDropped(m) {
  const t = turns.get(m.turn_id) || current;
  if (!t) return;
  if (t === current) current = null;
  if (document.body.dataset.phase === "thinking") phase("live");
  if (m.reason.startsWith("own echo")) {
    t.el.remove(); // the agent heard its own voice: nothing the user said
    return;
  }
  if (!t.fin.textContent) {
    t.user.classList.add("dropped");
    t.part.textContent = "";
    const words = m.reason.startsWith("backchannel: ") ? m.reason.slice(13) : "";
    t.fin.textContent = words || "(didn't catch that)";
    t.user.title = "Not taken as a turn: " + m.reason;
  }
  if (t.agent && !t.said.length) {
    t.agent.remove();
    t.agent = null;
  }
}

function drawTiming(rec) {
  const t = turns.get(rec.turn_id);
  if (!t) return;
  const box = el("div", "timing");
  const v2v = rec.v2v_ms;
  if (v2v === null || v2v === undefined) {
    box.textContent = rec.interrupted ? "interrupted before the reply was heard" : "no spoken reply";
    t.el.append(box);
    return;
  }
  const endpoint = rec.endpoint_ms || 0;
  const stt = rec.stt_final_ms || 0;
  const reply = Math.max(0, v2v - endpoint - stt);
  const scale = Math.max(2000, v2v); // 2 s fills the bar, so turns compare at a glance
  const bar = el("div", "bar");
  const parts = [
    ["seg-endpoint", endpoint, "end of your speech → turn decided (the pause that ends a turn)"],
    ["seg-stt", stt, "turn decided → final transcript"],
    ["seg-reply", reply, "final transcript → the agent's first sound"],
  ];
  for (const [cls, ms, what] of parts) {
    const seg = el("span", cls);
    seg.style.width = ((100 * ms) / scale).toFixed(2) + "%";
    seg.title = `${what}: ${Math.round(ms)} ms`;
    bar.append(seg);
  }
  const line = el("div");
  line.append(el("b", "", `${Math.round(v2v)} ms`), " from the end of your words to the agent's voice");
  const keys = el("div");
  const key = (cls, label) => {
    const k = el("span", "key");
    k.append(el("i", cls), label);
    keys.append(k);
  };
  const ms = (v) => (v === null || v === undefined ? "–" : `${Math.round(v)} ms`);
  key("seg-endpoint", `turn end ${ms(rec.endpoint_ms)}`);
  key("seg-stt", `transcript ${ms(rec.stt_final_ms)}`);
  key("seg-reply", `reply ${ms(reply)} (LLM first token ${ms(rec.llm_ttft_ms)}, voice ${ms(rec.tts_first_audio_ms)})`);
  box.append(line, bar, keys);
  t.el.append(box);
  scrollDown();
}

// -- controls ----------------------------------------------------------------------------------
function press() {
  if (!live || !live.started || mode !== "ptt" || pttDown) return;
  pttDown = true;
  if (live.play.buffered > 0) interrupt(); // talking over the agent stops it at once
  setMuted();
  showControls();
}

function release() {
  if (!pttDown) return;
  pttDown = false;
  setMuted();
  showControls();
  // The turn is over now: the server need not wait for the end silence.
  if (live && live.started && live.ws.readyState === WebSocket.OPEN) live.ws.send(JSON.stringify({ type: "end_turn" }));
}

function typing(e) {
  return e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement;
}

function loadSettings() {
  try {
    const saved = JSON.parse(localStorage.getItem("voxloop.settings") || "{}");
    if (saved.silence) $("silence").value = saved.silence;
    if (typeof saved.barge === "boolean") $("barge").checked = saved.barge;
    if (typeof saved.aec === "boolean") $("aec").checked = saved.aec;
    if (saved.prompt) $("prompt").value = saved.prompt;
    if (saved.mode === "ptt") document.querySelector('input[name="mode"][value="ptt"]').checked = true;
  } catch {
    /* nothing saved */
  }
  mode = document.querySelector('input[name="mode"]:checked').value;
  $("silence-out").textContent = `${$("silence").value} ms`;
}

function saveSettings() {
  const s = { silence: $("silence").value, barge: $("barge").checked, aec: $("aec").checked, prompt: $("prompt").value, mode };
  try {
    localStorage.setItem("voxloop.settings", JSON.stringify(s));
  } catch {
    /* private mode */
  }
}

function wire() {
  $("start").addEventListener("click", start);
  $("end").addEventListener("click", end);
  $("interrupt").addEventListener("click", interrupt);
  const talk = $("talk");
  talk.addEventListener("pointerdown", (e) => {
    talk.setPointerCapture(e.pointerId);
    press();
  });
  talk.addEventListener("pointerup", release);
  talk.addEventListener("pointercancel", release);
  document.querySelectorAll('input[name="mode"]').forEach((r) =>
    r.addEventListener("change", () => {
      mode = r.value;
      pttDown = false;
      setMuted();
      showControls();
      saveSettings();
    }),
  );
  $("silence").addEventListener("input", () => ($("silence-out").textContent = `${$("silence").value} ms`));
  ["silence", "barge", "aec", "prompt"].forEach((id) => $(id).addEventListener("change", saveSettings));
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") interrupt();
    if (e.code === "Space" && !typing(e) && mode === "ptt" && live && live.started) {
      e.preventDefault();
      if (!e.repeat) press();
    }
  });
  document.addEventListener("keyup", (e) => {
    if (e.code === "Space" && !typing(e)) release();
  });
}

loadSettings();
wire();
waitUntilReady();
