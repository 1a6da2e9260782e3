// Live captions: the microphone streamed to a live session on /v1/realtime, drafts shown in grey
// as they come and each finished turn in black, the transcript offered as txt/srt/vtt.
//
// A page cannot set an Authorization header on a WebSocket, and must not hold a long-lived key
// in a socket URL, so it first mints a client secret with the key typed in the page (POST
// /v1/realtime/client_secrets, which also fixes the session's configuration), then opens the
// socket with the secret as the `openai-insecure-api-key.<secret>` subprotocol. The secret
// opens this one session and expires within a minute if unused.
"use strict";

(() => {
  const RATE = 24000; // OpenAI's PCM rate; the session is minted with it
  const KEY_PROTOCOL = "openai-insecure-api-key.";
  const SECRET_SECONDS = 60;
  const FINISH_MS = 30000; // after Stop, how long the last turns may take to complete

  const $ = (id) => document.getElementById(id);
  const startButton = $("live-start");
  const stopButton = $("live-stop");
  const stateLine = $("live-state");
  const box = $("live-transcript");
  const downloads = $("live-downloads");
  const errorBox = $("error");

  let live = null; // {socket, context, stream}
  let turns = new Map(); // item_id -> {el, text, draft, start, end, done}
  let finishing = null; // resolves once every turn is done, after Stop
  const links = window.whisperxDownloads.links("live-download-");

  startButton.addEventListener("click", () => {
    start().catch((error) => fail(error.message || String(error)));
  });
  stopButton.addEventListener("click", () => {
    stop().catch((error) => fail(error.message || String(error)));
  });

  async function start() {
    hideError();
    if (!navigator.mediaDevices || !window.AudioWorkletNode || !window.WebSocket) {
      throw new Error("This browser cannot stream the microphone here (it needs HTTPS or localhost).");
    }
    startButton.disabled = true;
    setState("Asking for the microphone…");
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true },
      });
    } catch (error) {
      throw new Error(`The microphone is not available: ${error.message || error}`);
    }
    live = { socket: null, context: null, stream };
    setState("Opening a live session…");
    const secret = await mintSecret();
    const { context, source } = await audioGraph(stream);
    live.context = context;
    const node = new AudioWorkletNode(context, "pcm-tap", { processorOptions: { rate: RATE } });
    const mute = context.createGain();
    mute.gain.value = 0; // the graph must reach the speakers to run; nothing is heard
    const socket = await openSocket(secret);
    live.socket = socket;
    reset();
    socket.addEventListener("message", (message) => onEvent(JSON.parse(message.data)));
    socket.addEventListener("close", onClose);
    node.port.onmessage = (message) => {
      if (socket.readyState !== WebSocket.OPEN) return;
      socket.send(JSON.stringify({ type: "input_audio_buffer.append", audio: base64(message.data) }));
    };
    source.connect(node);
    node.connect(mute);
    mute.connect(context.destination);
    stopButton.hidden = false;
    stopButton.focus();
    setState("Listening — speak now.");
  }

  async function stop() {
    if (!live) return;
    stopButton.hidden = true;
    const { socket } = live;
    releaseAudio();
    if (socket && socket.readyState === WebSocket.OPEN) {
      setState("Finishing the last turn…");
      socket.send(JSON.stringify({ type: "input_audio_buffer.commit" })); // the turn spoken now
      await Promise.race([allDone(), new Promise((resolve) => setTimeout(resolve, FINISH_MS))]);
      socket.close(1000, "done");
    }
    live = null;
    startButton.disabled = false;
    setState(turns.size ? "Stopped. The transcript is below." : "Stopped.");
  }

  async function mintSecret() {
    const language = $("language").value.trim().toLowerCase();
    const transcription = { model: "whisper-1" };
    if (language) transcription.language = language;
    const body = {
      expires_after: { anchor: "created_at", seconds: SECRET_SECONDS },
      session: {
        type: "transcription",
        audio: {
          input: {
            format: { type: "audio/pcm", rate: RATE },
            transcription,
            turn_detection: { type: "server_vad" },
          },
        },
      },
    };
    const key = $("api-key").value.trim();
    const headers = { "Content-Type": "application/json" };
    if (key) headers.Authorization = `Bearer ${key}`;
    let response;
    try {
      response = await fetch("/v1/realtime/client_secrets", {
        method: "POST",
        headers,
        body: JSON.stringify(body),
      });
    } catch (error) {
      throw new Error(`Cannot reach the server (${error.message || error}).`);
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const error = data && data.error;
      const field = error && error.param ? ` (field: ${error.param})` : "";
      throw new Error(error && error.message ? `${error.message}${field}` : `The server answered ${response.status}.`);
    }
    return data.value;
  }

  // A 24 kHz context makes the browser resample the microphone; one that cannot connect a
  // microphone to a context of another rate gets its own rate, and the worklet resamples.
  async function audioGraph(stream) {
    for (const options of [{ sampleRate: RATE }, {}]) {
      const context = new AudioContext(options);
      try {
        await context.audioWorklet.addModule("/web/live-worklet.js");
        return { context, source: context.createMediaStreamSource(stream) };
      } catch (error) {
        await context.close();
        if (!options.sampleRate) throw error;
      }
    }
    throw new Error("No audio context could take the microphone.");
  }

  function openSocket(secret) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const url = `${scheme}://${location.host}/v1/realtime?intent=transcription`;
    const socket = new WebSocket(url, ["realtime", KEY_PROTOCOL + secret]);
    return new Promise((resolve, reject) => {
      socket.addEventListener("open", () => resolve(socket), { once: true });
      socket.addEventListener(
        "close",
        () => reject(new Error("The server refused the live session (its log says why).")),
        { once: true },
      );
    });
  }

  // --- events -------------------------------------------------------------------------------
  function onEvent(event) {
    const item = event.item_id;
    switch (event.type) {
      case "input_audio_buffer.speech_started":
        turn(item).start = event.audio_start_ms / 1000;
        break;
      case "input_audio_buffer.speech_stopped":
        turn(item).end = event.audio_end_ms / 1000;
        break;
      case "conversation.item.input_audio_transcription.delta":
        turn(item).draft += event.delta || "";
        render(turn(item));
        break;
      case "conversation.item.input_audio_transcription.completed": {
        const done = turn(item);
        done.text = (event.transcript || "").trim();
        done.done = true;
        render(done);
        renderDownloads();
        break;
      }
      case "conversation.item.input_audio_transcription.failed":
        turn(item).done = true;
        showError(event.error && event.error.message ? event.error.message : "A turn failed.");
        break;
      case "error":
        if (event.error && event.error.code === "input_audio_buffer_commit_empty") break;
        showError(event.error && event.error.message ? event.error.message : "Live session error.");
        break;
      default:
        break;
    }
    if (finishing && [...turns.values()].every((t) => t.done)) finishing();
  }

  function turn(item) {
    if (!turns.has(item)) {
      const el = document.createElement("p");
      el.className = "live-turn draft";
      el.dataset.item = item;
      el.hidden = true; // shown with its first words
      const previous = [...turns.values()].pop();
      const start = previous ? previous.end ?? previous.start ?? 0 : 0;
      turns.set(item, { el, text: "", draft: "", start, end: null, done: false });
      box.append(el);
    }
    return turns.get(item);
  }

  function render(t) {
    const time = document.createElement("span");
    time.className = "time";
    time.textContent = clock(t.start);
    t.el.replaceChildren(time, " ", t.done ? t.text : t.draft.trim());
    t.el.classList.toggle("draft", !t.done);
    t.el.classList.toggle("done", t.done);
    t.el.hidden = t.done ? !t.text : !t.draft.trim();
    box.scrollTop = box.scrollHeight;
  }

  function allDone() {
    if ([...turns.values()].every((t) => t.done)) return Promise.resolve();
    return new Promise((resolve) => {
      finishing = resolve;
    });
  }

  function onClose(event) {
    if (live && live.socket === event.target) {
      releaseAudio();
      live = null;
      stopButton.hidden = true;
      startButton.disabled = false;
      setState(`The live session ended${event.reason ? ` (${event.reason})` : ""}.`);
    }
  }

  // --- downloads ----------------------------------------------------------------------------
  function renderDownloads() {
    const done = [...turns.values()].filter((t) => t.done && t.text);
    const cues = done.map((t) => ({ start: t.start, end: Math.max(t.end ?? t.start + 1, t.start + 0.5), text: t.text }));
    const documents = {
      txt: { body: `${done.map((t) => t.text).join("\n")}\n`, type: "text/plain" },
      srt: {
        body: cues.map((c, i) => `${i + 1}\n${stamp(c.start, ",")} --> ${stamp(c.end, ",")}\n${c.text}\n\n`).join(""),
        type: "application/x-subrip",
      },
      vtt: {
        body: `WEBVTT\n\n${cues.map((c) => `${stamp(c.start, ".")} --> ${stamp(c.end, ".")}\n${escapeVtt(c.text)}\n\n`).join("")}`,
        type: "text/vtt",
      },
    };
    links.offer(documents, "live-captions");
    downloads.hidden = done.length === 0;
  }

  // --- helpers ------------------------------------------------------------------------------
  function reset() {
    turns = new Map();
    finishing = null;
    box.replaceChildren();
    downloads.hidden = true;
  }

  function releaseAudio() {
    if (!live) return;
    live.stream.getTracks().forEach((track) => track.stop());
    if (live.context) live.context.close().catch(() => {});
    live.context = null;
  }

  function fail(message) {
    if (live) {
      releaseAudio();
      if (live.socket) live.socket.close(1000, "error");
      live = null;
    }
    stopButton.hidden = true;
    startButton.disabled = false;
    setState("");
    showError(message);
  }

  function base64(buffer) {
    const bytes = new Uint8Array(buffer);
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(binary);
  }

  function stamp(seconds, separator) {
    const ms = Math.round(Math.max(0, seconds) * 1000);
    const pad = (n, width) => String(n).padStart(width, "0");
    const h = Math.floor(ms / 3600000);
    const m = Math.floor((ms % 3600000) / 60000);
    const s = Math.floor((ms % 60000) / 1000);
    return `${pad(h, 2)}:${pad(m, 2)}:${pad(s, 2)}${separator}${pad(ms % 1000, 3)}`;
  }

  function escapeVtt(text) {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function clock(seconds) {
    const total = Math.max(0, Number(seconds) || 0);
    return `${Math.floor(total / 60)}:${(total % 60).toFixed(1).padStart(4, "0")}`;
  }

  function setState(text) {
    stateLine.textContent = text;
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function hideError() {
    errorBox.hidden = true;
    errorBox.textContent = "";
  }
})();
