// The web page: submits one async job through the public API, follows it, shows the transcript
// with speakers and word timing, and offers srt/vtt/txt/json downloads.
//
// A job's result is deleted once it is delivered, so the page fetches it once, as `vtt_json`
// (OpenAI's verbose_json with words and speakers, plus the server's own WebVTT document), and
// derives every download from that: vtt as sent, srt from the same cues, txt from the text,
// json as the verbose_json body.
"use strict";

(() => {
  const KEY_STORAGE = "whisperx-api-key";
  const POLL_MS = 1000;
  const SPEAKER_COLOURS = 8;

  const $ = (id) => document.getElementById(id);
  const form = $("job-form");
  const keyInput = $("api-key");
  const fileInput = $("file");
  const dropZone = $("drop-zone");
  const fileName = $("file-name");
  const recordButton = $("record");
  const recordState = $("record-state");
  const diarize = $("diarize");
  const minSpeakers = $("min-speakers");
  const maxSpeakers = $("max-speakers");
  const submitButton = $("submit");
  const cancelButton = $("cancel");
  const statusCard = $("status-card");
  const statusLine = $("status");
  const progress = $("progress");
  const errorBox = $("error");
  const result = $("result");
  const player = $("player");
  const transcriptBox = $("transcript");
  const speakerList = $("speakers");

  let audioFile = null; // the File (or recording) the user gave: played back locally
  let audioUrl = null;
  const downloads = window.whisperxDownloads.links("download-");
  let currentJob = null;
  let words = []; // [{start, end, el}] in time order, for highlighting
  let activeWord = null;
  let recorder = null;

  // --- key ----------------------------------------------------------------------------------
  keyInput.value = sessionStorage.getItem(KEY_STORAGE) || "";
  keyInput.addEventListener("input", () => {
    const key = keyInput.value.trim();
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  });
  $("forget-key").addEventListener("click", () => {
    keyInput.value = "";
    sessionStorage.removeItem(KEY_STORAGE);
    keyInput.focus();
  });

  function authHeaders() {
    const key = keyInput.value.trim();
    return key ? { Authorization: `Bearer ${key}` } : {};
  }

  // --- audio input --------------------------------------------------------------------------
  function useFile(file) {
    audioFile = file;
    fileName.textContent = file ? `${file.name} (${formatBytes(file.size)})` : "No file chosen";
    if (audioUrl) URL.revokeObjectURL(audioUrl);
    audioUrl = file ? URL.createObjectURL(file) : null;
  }

  fileInput.addEventListener("change", () => useFile(fileInput.files[0] || null));
  ["dragenter", "dragover"].forEach((type) =>
    dropZone.addEventListener(type, (event) => {
      event.preventDefault();
      dropZone.classList.add("over");
    }),
  );
  ["dragleave", "drop"].forEach((type) =>
    dropZone.addEventListener(type, () => dropZone.classList.remove("over")),
  );
  dropZone.addEventListener("drop", (event) => {
    event.preventDefault();
    const file = event.dataTransfer.files[0];
    if (file) useFile(file);
  });

  recordButton.addEventListener("click", async () => {
    if (recorder && recorder.state === "recording") {
      recorder.stop();
      return;
    }
    if (!navigator.mediaDevices || !window.MediaRecorder) {
      showError("This browser cannot record audio here (recording needs HTTPS or localhost).");
      return;
    }
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      const chunks = [];
      recorder = new MediaRecorder(stream);
      recorder.addEventListener("dataavailable", (event) => chunks.push(event.data));
      recorder.addEventListener("stop", () => {
        stream.getTracks().forEach((track) => track.stop());
        const type = recorder.mimeType || "audio/webm";
        const extension = type.includes("ogg") ? "ogg" : type.includes("mp4") ? "m4a" : "webm";
        useFile(new File(chunks, `recording.${extension}`, { type }));
        recordButton.textContent = "Record from microphone";
        recordButton.setAttribute("aria-pressed", "false");
        recordState.textContent = "Recording ready.";
      });
      recorder.start();
      recordButton.textContent = "Stop recording";
      recordButton.setAttribute("aria-pressed", "true");
      recordState.textContent = "Recording…";
    } catch (error) {
      showError(`The microphone is not available: ${error.message || error}`);
    }
  });

  diarize.addEventListener("change", () => {
    minSpeakers.disabled = maxSpeakers.disabled = !diarize.checked;
  });

  // --- submit and follow --------------------------------------------------------------------
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    hideError();
    if (!audioFile) {
      showError("Choose, drop or record an audio file first.");
      fileInput.focus();
      return;
    }
    const body = new FormData();
    body.append("file", audioFile, audioFile.name);
    body.append("async", "true");
    body.append("response_format", "vtt_json");
    body.append("timestamp_granularities[]", "word");
    const language = $("language").value.trim();
    if (language) body.append("language", language);
    if (diarize.checked) {
      body.append("diarize", "true");
      if (minSpeakers.value) body.append("min_speakers", minSpeakers.value);
      if (maxSpeakers.value) body.append("max_speakers", maxSpeakers.value);
    }
    setBusy(true);
    result.hidden = true;
    showStatus("Uploading…", null);
    try {
      const accepted = await api("POST", "/v1/audio/transcriptions", body);
      currentJob = accepted.job_id;
      cancelButton.hidden = false;
      const payload = await follow(currentJob);
      if (payload) showResult(payload);
    } catch (error) {
      statusCard.hidden = true;
      showError(error.message);
    } finally {
      currentJob = null;
      cancelButton.hidden = true;
      setBusy(false);
    }
  });

  cancelButton.addEventListener("click", async () => {
    if (!currentJob) return;
    try {
      await api("DELETE", `/transcription/${currentJob}`);
    } catch (error) {
      showError(error.message);
    }
  });

  async function follow(jobId) {
    for (;;) {
      const job = await api("GET", `/transcription/${jobId}`);
      if (job.status === "Queued") {
        const where = job.queue_position ? ` — position ${job.queue_position} in line` : "";
        showStatus(`Queued${where}`, null);
      } else if (job.status === "Processing") {
        const fraction = Number(job.progress || 0);
        showStatus(`Transcribing — ${Math.floor(fraction * 100)}%`, fraction);
      } else if (job.status === "Completed") {
        showStatus("Done.", 1);
        return api("GET", `/transcription/${jobId}/result`);
      } else if (job.status === "Failed") {
        throw new Error(job.error || "The job failed.");
      } else if (job.status === "Cancelled") {
        showStatus("Cancelled.", null);
        return null;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  async function api(method, path, body) {
    let response;
    try {
      response = await fetch(path, { method, body, headers: authHeaders() });
    } catch (error) {
      throw new Error(`Cannot reach the server (${error.message || error}).`);
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) throw new Error(describeError(response, data, text));
    return data;
  }

  function describeError(response, data, text) {
    const error = data && data.error;
    if (error && typeof error === "object" && error.message) {
      const field = error.param ? ` (field: ${error.param})` : "";
      return `${error.message}${field}`;
    }
    if (typeof error === "string") return error;
    return `The server answered ${response.status} ${response.statusText}${text ? `: ${text.slice(0, 200)}` : ""}`;
  }

  // --- result -------------------------------------------------------------------------------
  function showResult(payload) {
    player.src = audioUrl;
    renderTranscript(payload);
    renderDownloads(payload);
    result.hidden = false;
    $("result-title").focus({ preventScroll: true });
    result.scrollIntoView({ behavior: "smooth", block: "start" });
  }

  function renderTranscript(payload) {
    transcriptBox.replaceChildren();
    speakerList.replaceChildren();
    words = [];
    activeWord = null;
    const colours = new Map();
    const colourOf = (speaker) => {
      if (!colours.has(speaker)) colours.set(speaker, colours.size % SPEAKER_COLOURS);
      return colours.get(speaker);
    };
    const allWords = Array.isArray(payload.words) ? payload.words : [];
    let next = 0;
    for (const segment of payload.segments || []) {
      const block = document.createElement("p");
      block.className = "segment";
      const speaker = segment.speaker || null;
      if (speaker) {
        block.dataset.speaker = speaker;
        block.classList.add(`speaker-${colourOf(speaker)}`);
        const label = document.createElement("span");
        label.className = "speaker-label";
        label.textContent = speaker;
        block.append(label, " ");
      }
      const time = document.createElement("span");
      time.className = "time";
      time.textContent = clock(segment.start);
      block.append(time, " ");
      const own = [];
      while (next < allWords.length && allWords[next].start < segment.end - 1e-3) {
        own.push(allWords[next]);
        next += 1;
      }
      if (own.length === 0) {
        block.append(segment.text.trim());
      }
      own.forEach((word, index) => {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "word";
        button.textContent = word.word;
        button.dataset.start = word.start;
        button.dataset.end = word.end;
        button.title = `${clock(word.start)} – ${clock(word.end)}`;
        block.append(button);
        if (index < own.length - 1) block.append(" ");
        words.push({ start: word.start, end: word.end, el: button });
      });
      transcriptBox.append(block);
    }
    for (const [speaker, colour] of colours) {
      const item = document.createElement("li");
      item.className = `speaker-${colour}`;
      item.textContent = speaker;
      speakerList.append(item);
    }
    speakerList.hidden = colours.size === 0;
  }

  transcriptBox.addEventListener("click", (event) => {
    const button = event.target.closest("button.word");
    if (!button) return;
    player.currentTime = Number(button.dataset.start);
    highlight(player.currentTime);
    player.play().catch(() => {}); // autoplay rules may refuse; the position is set anyway
  });

  function highlight(time) {
    let low = 0;
    let high = words.length - 1;
    let found = null;
    while (low <= high) {
      const mid = (low + high) >> 1;
      if (words[mid].start <= time) {
        found = mid;
        low = mid + 1;
      } else {
        high = mid - 1;
      }
    }
    const word = found !== null && time < words[found].end + 0.15 ? words[found].el : null;
    if (word === activeWord) return;
    if (activeWord) {
      activeWord.classList.remove("current");
      activeWord.removeAttribute("aria-current");
    }
    activeWord = word;
    if (word) {
      word.classList.add("current");
      word.setAttribute("aria-current", "true");
    }
  }

  let frame = null;
  const tick = () => {
    highlight(player.currentTime);
    frame = player.paused ? null : requestAnimationFrame(tick);
  };
  player.addEventListener("play", () => {
    if (frame === null) frame = requestAnimationFrame(tick);
  });
  player.addEventListener("seeked", () => highlight(player.currentTime));
  player.addEventListener("timeupdate", () => highlight(player.currentTime));

  function renderDownloads(payload) {
    const { vtt_text: vtt, ...verbose } = payload;
    const documents = {
      srt: { body: vttToSrt(vtt || ""), type: "application/x-subrip" },
      vtt: { body: vtt || "WEBVTT\n\n", type: "text/vtt" },
      txt: { body: `${payload.text || ""}\n`, type: "text/plain" },
      json: { body: `${JSON.stringify(verbose, null, 2)}\n`, type: "application/json" },
    };
    const base = (audioFile ? audioFile.name : "transcript").replace(/\.[^.]+$/, "") || "transcript";
    downloads.offer(documents, base);
    const chosen = $("format").value;
    const primary = $("download-primary");
    primary.href = $(`download-${chosen}`).href;
    primary.download = `${base}.${chosen}`;
    primary.textContent = `Download .${chosen}`;
  }

  // The server's srt and vtt are built from the same cues: SubRip numbers them, writes a comma
  // before the milliseconds and does not escape the text.
  function vttToSrt(vtt) {
    const blocks = vtt.replace(/\r\n/g, "\n").split(/\n\n+/);
    const cues = [];
    for (const block of blocks) {
      const lines = block.split("\n");
      const timing = lines.findIndex((line) => line.includes("-->"));
      if (timing < 0) continue;
      const times = lines[timing].replace(/(\d\d:\d\d:\d\d)\.(\d\d\d)/g, "$1,$2");
      const text = lines
        .slice(timing + 1)
        .join("\n")
        .replace(/&lt;/g, "<")
        .replace(/&gt;/g, ">")
        .replace(/&amp;/g, "&");
      cues.push(`${cues.length + 1}\n${times}\n${text}\n\n`);
    }
    return cues.join("");
  }

  // --- small helpers ------------------------------------------------------------------------
  function setBusy(busy) {
    submitButton.disabled = busy;
    submitButton.textContent = busy ? "Working…" : "Transcribe";
  }

  function showStatus(text, fraction) {
    statusCard.hidden = false;
    statusLine.textContent = text;
    if (fraction === null) progress.removeAttribute("value");
    else progress.value = fraction;
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function hideError() {
    errorBox.hidden = true;
    errorBox.textContent = "";
  }

  function clock(seconds) {
    const total = Math.max(0, Number(seconds) || 0);
    const minutes = Math.floor(total / 60);
    const rest = (total % 60).toFixed(1).padStart(4, "0");
    return `${minutes}:${rest}`;
  }

  function formatBytes(size) {
    if (size < 1024) return `${size} B`;
    if (size < 1024 * 1024) return `${(size / 1024).toFixed(0)} KB`;
    return `${(size / 1024 / 1024).toFixed(1)} MB`;
  }
})();
