// livemask page: Photo (upload + explain), Live (MJPEG + events), Webcam (getUserMedia over a WebSocket).
// Plain JavaScript, no dependencies, works offline.
"use strict";

const TOKEN = new URLSearchParams(location.search).get("token");
// ?camera=NAME: the Live view of that camera of the Site page (/site), on the same routes with ?camera=NAME
const CAMERA = new URLSearchParams(location.search).get("camera");
const WORDS = {};  // class name -> words, filled from /v1/summary's display_names (livemask/core/labels.py)
const COLOURS = { mask: "#3cc83c", no_mask: "#e62828" };
const METHOD_TITLES = { gradcam: "Grad-CAM", occlusion: "Occlusion" };
const PHOTO_MIN_WIDTH = 800;  // canvas pixels a photo is drawn at, at least (small photos are scaled up)
const EXPLAIN_PAGE = 8;  // faces one "Explain all" click explains (a crowd is explained page by page)

function words(label) { return WORDS[label] || label.replace(/_/g, " "); }  // before the summary: "no mask"
function colour(label) { return COLOURS[label] || "#ffbe00"; }
function pct(p) { return Math.round(p * 100) + "%"; }
function withToken(url) {
  if (!TOKEN) return url;
  return url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(TOKEN);
}
function cameraPath(path) {  // a live route of this page's source: the camera's when the page shows one
  return CAMERA ? path + (path.includes("?") ? "&" : "?") + "camera=" + encodeURIComponent(CAMERA) : path;
}
function headers() { return TOKEN ? { Authorization: "Bearer " + TOKEN } : {}; }
function setStatus(text, error) {
  const el = document.getElementById("status");
  el.textContent = text;
  el.classList.toggle("error", !!error);
}
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// A 503 with Retry-After (the explanation model is still loading) is tried again after that many seconds,
// a few times; any other answer is returned as it is.
const RETRIES_503 = 10;
async function fetchRetrying(path, init, onWait) {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(path, init());
    const wait = Number(res.headers.get("Retry-After"));
    if (res.status !== 503 || !wait || attempt >= RETRIES_503) return res;
    if (onWait) onWait(wait);
    await new Promise((resolve) => setTimeout(resolve, wait * 1000));
  }
}

async function postImage(path, file, onWait) {
  const res = await fetchRetrying(path, () => {
    const form = new FormData();
    form.append("file", file, file.name || "image");
    return { method: "POST", body: form, headers: headers() };
  }, onWait);
  let body = null;
  try { body = await res.json(); } catch (e) { body = { error: res.statusText }; }
  if (!res.ok) throw new Error(`${res.status}: ${body.error || res.statusText}`);
  return body;
}

// ---------------------------------------------------------------- tabs
function showMode(mode) {
  for (const t of document.querySelectorAll(".tab")) t.classList.toggle("active", t.dataset.mode === mode);
  for (const s of document.querySelectorAll(".mode")) s.hidden = s.id !== "mode-" + mode;
  document.body.dataset.mode = mode;
  if (mode === "live") Live.start();
}
for (const t of document.querySelectorAll(".tab")) t.addEventListener("click", () => showMode(t.dataset.mode));

// ---------------------------------------------------------------- photo mode
// Boxes and labels on a photo. `scale` sizes text and lines in canvas pixels. Full labels ("2: No mask 97%")
// when they do not overlap each other; otherwise only the face's number (the list beside the photo has the
// words), so a crowd's labels never pile up.
function labelRects(ctx, faces, scale, numbersOnly) {
  return faces.map((f, i) => {
    const [x1, y1, x2] = f.box;
    const text = numbersOnly ? String(i + 1) : `${i + 1}: ${words(f.label)} ${pct(f.probability)}`;
    const h = (numbersOnly ? Math.max(10, Math.min(18, 0.45 * (x2 - x1))) : 18) * scale;
    ctx.font = `${Math.round(h * 0.78)}px sans-serif`;
    const w = ctx.measureText(text).width + 6 * scale;
    return { text, x: x1, y: y1 - h >= 0 ? y1 - h : f.box[3], w, h };
  });
}
function overlapping(rects) {
  for (let i = 0; i < rects.length; i++) for (let j = i + 1; j < rects.length; j++) {
    const a = rects[i], b = rects[j];
    if (a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h) return true;
  }
  return false;
}
function drawFaces(ctx, faces, scale) {
  ctx.lineWidth = Math.max(2, Math.round(2 * scale));
  let rects = labelRects(ctx, faces, scale, false);
  const numbersOnly = overlapping(rects);
  if (numbersOnly) rects = labelRects(ctx, faces, scale, true);
  faces.forEach((f, i) => {
    const [x1, y1, x2, y2] = f.box;
    ctx.strokeStyle = colour(f.label);
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
  });
  faces.forEach((f, i) => {
    const r = rects[i];
    ctx.font = `${Math.round(r.h * 0.78)}px sans-serif`;
    ctx.fillStyle = colour(f.label);
    ctx.fillRect(r.x, r.y, r.w, r.h);
    ctx.fillStyle = "#fff";
    ctx.fillText(r.text, r.x + 3 * scale, r.y + r.h - 0.25 * r.h);
  });
  return numbersOnly;
}

function faceItem(f, i) {
  const li = el("li", { class: "face", "data-index": String(i), "data-label": f.label });
  li.style.borderLeftColor = colour(f.label);
  li.append(el("strong", { text: `${i + 1}: ${words(f.label)}` }), " ",
            el("span", { class: "prob", text: `${pct(f.probability)}` }));
  li.title = Object.entries(f.probabilities).map(([k, p]) => `${words(k)} ${pct(p)}`).join(", ");
  return li;
}

// one map: the overlay (click to zoom), then the map in words from the server (livemask/explain/words.py):
// where it looked, the trust verdict, a warning when it does worse than random, the figures under a fold
function mapFigure(e) {
  const img = el("img", { class: "heatmap", "data-method": e.method, src: "data:image/png;base64," + e.overlay_png,
    alt: e.method + " heat map", title: "click to zoom" });
  img.addEventListener("click", () => img.classList.toggle("zoomed"));
  const fig = el("figure", { class: "map", "data-trust": e.summary ? e.summary.trust : "unscored" }, img,
    el("figcaption", { text: `${METHOD_TITLES[e.method] || e.method} [${words(e.target)} ${pct(e.target_probability)}] ${Math.round(e.ms)} ms` }));
  if (!e.summary) return fig;
  fig.append(el("p", { class: "looked-at", text: e.summary.looked_at }), el("p", { class: "verdict", text: e.summary.verdict }));
  if (e.summary.warning) fig.append(el("p", { class: "warning", role: "alert", text: "\u26a0 " + e.summary.warning }));
  const regions = Object.entries(e.summary.regions).map(([k, v]) => `${k} ${pct(v)}`).join(", ");
  fig.append(el("details", { class: "faith" }, el("summary", { text: "details" }),
    el("p", { text: e.summary.details }), el("p", { text: "share of the map: " + regions })));
  return fig;
}

function renderExplained(container, data, open = true) {
  for (const [k, f] of data.faces.entries()) {
    const index = f.index !== undefined ? f.index : k;
    container.querySelector(`.explain-face[data-index="${index}"]`)?.remove();
    const row = el("div", { class: "explain-row", "data-index": String(index) });
    // each face folds: its line says who and, from the first map, where the model looked (and a warning)
    const first = f.explanations[0]?.summary;
    const warned = f.explanations.some(e => e.summary && e.summary.warning);
    const fold = el("details", { class: "explain-face", "data-index": String(index) },
      el("summary", { text: `face ${index + 1}${f.track_id !== undefined ? " (#" + f.track_id + ")" : ""}: ${words(f.label)} ${pct(f.probability)}` +
        (first ? " \u2014 " + first.looked_at : "") + (warned ? " \u26a0" : "") }), row);
    if (open) fold.open = true;
    row.append(el("figure", {}, el("img", { src: "data:image/png;base64," + f.crop_png, alt: "face crop" }),
      // a tracked face (the Live page) carries its label voted over recent frames, which can differ from
      // the probability of this frame's crop alone that the maps beside it explain
      el("figcaption", { text: f.track_id !== undefined
        ? `face ${index + 1} (#${f.track_id}): ${words(f.label)} ${pct(f.probability)}, voted over recent frames`
        : `face ${index + 1}: ${words(f.label)} ${pct(f.probability)}` })));
    for (const e of f.explanations) row.append(mapFigure(e));
    row.append(el("div", { class: "legend" }, el("span", { text: "low" }),
      el("img", { src: "data:image/png;base64," + data.legend_png, alt: "colour legend" }), el("span", { text: "high" })));
    container.append(fold);
  }
}

function download(blob, name) {
  const a = el("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

async function analyseFile(file) {
  const card = document.getElementById("card-template").content.firstElementChild.cloneNode(true);
  card.querySelector(".card-title").textContent = file.name || "image";
  document.getElementById("results").prepend(card);
  const msg = card.querySelector(".message");
  const canvas = card.querySelector("canvas.photo");
  const stem = (file.name || "image").replace(/\.[^.]*$/, "");
  let result = null;
  let explained = [];
  try {
    const bitmap = createImageBitmap(file).catch(() => null);  // decoded while the server works
    const data = await postImage(withToken("/v1/image"), file);  // the server's verdict on the bytes comes first
    const img = await bitmap;
    if (!img) throw new Error("the browser cannot show this image");
    result = data;
    // small photos are drawn larger (at least PHOTO_MIN_WIDTH canvas pixels; the page scales the canvas to the
    // card's width), so their boxes and labels stay readable
    const k = Math.max(1, PHOTO_MIN_WIDTH / data.width);
    canvas.width = Math.round(data.width * k); canvas.height = Math.round(data.height * k);
    canvas.dataset.scale = String(k);
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    ctx.setTransform(k, 0, 0, k, 0, 0);
    canvas.dataset.labels = drawFaces(ctx, data.faces, Math.max(1, data.width / PHOTO_MIN_WIDTH) / k) ? "numbers" : "full";
    const list = card.querySelector(".faces");
    data.faces.forEach((f, i) => list.append(faceItem(f, i)));
    msg.textContent = data.faces.length ? `${data.faces.length} face(s), ${Math.round(data.ms)} ms` : "no faces found";
    card.dataset.state = "labelled";
  } catch (err) {
    msg.textContent = err.message; msg.classList.add("error");
    card.dataset.state = "error";
    return;
  }
  const explainOut = card.querySelector(".explained");
  const explainAll = card.querySelector(".explain-all");
  let nextFace = 0;  // "Explain all" explains EXPLAIN_PAGE faces at a time, one request per face
  function explainAllLabel() {
    const n = result ? result.faces.length : 0;
    explainAll.hidden = n === 0 || nextFace >= n;
    explainAll.textContent = n <= EXPLAIN_PAGE ? "Explain all"
      : `Explain faces ${nextFace + 1}-${Math.min(n, nextFace + EXPLAIN_PAGE)} of ${n}`;
  }
  async function explainOne(index, open) {
    const data = await postImage(withToken(`/v1/explain?method=all&face=${index}`), file,
      () => { msg.textContent = "loading the explanation model..."; });
    renderExplained(explainOut, data, open);
    explained = explained.filter(x => x.index !== index).concat(data.faces.map((f) => ({ index, explanations: f.explanations.map(({ overlay_png, ...rest }) => rest) })));
    return data;
  }
  async function explain(index) {
    msg.classList.remove("error");
    card.dataset.state = "explaining";
    const started = performance.now();
    try {
      if (index !== null) {
        msg.textContent = `explaining face ${index + 1}...`;
        await explainOne(index, true);
        explainOut.querySelector(`.explain-face[data-index="${index}"]`)?.scrollIntoView({ block: "nearest" });
        msg.textContent = `explained face ${index + 1} in ${Math.round(performance.now() - started)} ms`;
      } else {
        const n = result.faces.length, last = Math.min(n, nextFace + EXPLAIN_PAGE);
        for (let i = nextFace; i < last; i++) {
          msg.textContent = `explaining face ${i + 1} of ${n}...`;
          await explainOne(i, i === 0);  // folded, but the first face of the photo opens
        }
        msg.textContent = `explained faces ${nextFace + 1}-${last} of ${n} in ${Math.round(performance.now() - started)} ms`;
        nextFace = last;
        explainAllLabel();
      }
      card.dataset.state = "explained";
    } catch (err) {
      msg.textContent = err.message; msg.classList.add("error");
      card.dataset.state = "error";
    }
  }
  explainAllLabel();
  explainAll.addEventListener("click", () => explain(null));
  card.querySelector(".faces").addEventListener("click", (ev) => {
    const li = ev.target.closest(".face");
    if (li) explain(Number(li.dataset.index));
  });
  canvas.addEventListener("click", (ev) => {
    const r = canvas.getBoundingClientRect();
    const k = Number(canvas.dataset.scale || 1);
    const x = (ev.clientX - r.left) * canvas.width / r.width / k, y = (ev.clientY - r.top) * canvas.height / r.height / k;
    const i = result.faces.findIndex(f => x >= f.box[0] && x <= f.box[2] && y >= f.box[1] && y <= f.box[3]);
    if (i >= 0) explain(i);
  });
  card.querySelector(".download-image").addEventListener("click", () =>
    canvas.toBlob(b => download(b, stem + "_annotated.png"), "image/png"));
  card.querySelector(".download-json").addEventListener("click", () => {
    const out = { file: file.name, width: result.width, height: result.height, faces: result.faces, explanations: explained };
    download(new Blob([JSON.stringify(out, null, 2)], { type: "application/json" }), stem + ".json");
  });
}

function handleFiles(files) {
  for (const f of files) analyseFile(f);
}
const drop = document.getElementById("drop");
document.getElementById("files").addEventListener("change", (ev) => { handleFiles(ev.target.files); ev.target.value = ""; });
drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (ev) => { ev.preventDefault(); drop.classList.remove("over"); handleFiles(ev.dataTransfer.files); });

// ---------------------------------------------------------------- live mode
function wsUrl(path) {
  return withToken((location.protocol === "https:" ? "wss://" : "ws://") + location.host + path);
}
function pct95(values) {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(0.95 * s.length))];
}

// an event's time: its position in the clip (m:ss.s) for a file, else the wall clock (hh:mm:ss)
function eventTime(line) {
  if (typeof line.position_s === "number") {
    const m = Math.floor(line.position_s / 60), sec = line.position_s - 60 * m;
    return `${m}:${sec.toFixed(1).padStart(4, "0")}`;
  }
  const t = typeof line.timestamp === "number" ? new Date(line.timestamp * 1000) : new Date();
  return t.toLocaleTimeString("en-GB", { hour12: false });
}

// window.liveStats: what the tests and benchmarks read (frames shown, latency per frame in ms)
// (states: the source's states in order, e.g. "live", "ended": a file at its end, until replayed)
window.liveStats = { frames: 0, latencies: [], countStates: [], ended: false, skipped: 0, states: [] };

const Live = {
  started: false,
  times: [],
  start() {
    if (this.started) return;
    this.started = true;
    const img = document.getElementById("live-img");
    const stats = window.liveStats;
    let meta = null, busy = false, nextBlob = null, nextMeta = null;
    const show = async (blob, m) => {
      busy = true;
      const url = URL.createObjectURL(blob);
      const probe = new Image();
      probe.src = url;
      try { await probe.decode(); } catch (e) { busy = false; URL.revokeObjectURL(url); return; }
      const old = img.src;
      img.src = url;
      if (old.startsWith("blob:")) URL.revokeObjectURL(old);
      const now = Date.now();
      stats.frames += 1;
      stats.latencies.push(now - m.captured_ms);
      if (stats.latencies.length > 5000) stats.latencies.shift();
      this.times.push(now);
      while (this.times.length && now - this.times[0] > 2000) this.times.shift();
      img.dataset.frames = String(stats.frames);
      img.dataset.frameId = String(m.frame_id);
      if (stats.state !== "ended") {  // a last frame decoded after the "ended" message leaves the figures at "-"
        document.getElementById("live-fps").textContent = this.times.length > 1
          ? (1000 * (this.times.length - 1) / (now - this.times[0])).toFixed(1) + " (server " + m.fps.toFixed(1) + ")" : "-";
        document.getElementById("live-latency").textContent =
          `${Math.round(now - m.captured_ms)} ms (p95 ${Math.round(pct95(stats.latencies.slice(-100)))} ms)`;
      }
      this.showCounts(m.counts);
      const people = m.people;  // the people stage: people counted by track since the start, and the masked share
      document.getElementById("live-people").textContent = people
        ? `${people.counted} (masked ${people.share_masked === null ? "-" : Math.round(100 * people.share_masked) + "%"})` : "-";
      busy = false;
      if (nextBlob) { const b = nextBlob, mm = nextMeta; nextBlob = null; show(b, mm); }
    };
    const ws = new WebSocket(wsUrl(cameraPath("/v1/live")));
    ws.binaryType = "blob";
    ws.onmessage = (ev) => {
      if (typeof ev.data === "string") {
        const message = JSON.parse(ev.data);
        if (message.state !== undefined) { this.showState(message); return; }
        meta = message;
        if (meta.end) { stats.ended = true; setStatus("live source ended: " + (meta.summary.summary?.ended || "")); }
        else stats.skipped = meta.skipped;
        return;
      }
      if (!meta || meta.end) return;
      if (busy) { nextBlob = ev.data; nextMeta = meta; } else show(ev.data, meta);  // newest first, drop stale
    };
    ws.onerror = () => setStatus("live stream: connection failed", true);
    ws.onclose = () => { if (!stats.ended) setStatus("live stream: connection closed (reload the page)", true); };
    const events = new EventSource(withToken(cameraPath("/v1/events")));
    const list = document.getElementById("live-events");
    let lastKey = "";
    events.onmessage = (ev) => {
      const line = JSON.parse(ev.data);
      if (line.alert) {  // the people stage's alert: a tracked face stayed unmasked for alerts.after_s
        const a = line.alert;
        list.prepend(el("li", { class: "alert", "data-frame-id": String(a.frame_id),
          text: `${eventTime(a)} alert #${a.track_id} ${words(a.label)} for ${a.duration_s.toFixed(1)} s` }));
        while (list.children.length > 50) list.lastChild.remove();
        return;
      }
      // faces in track order, so a change of the detector's order is not a change
      const faces = [...line.faces].sort((a, b) => (a.track_id ?? 0) - (b.track_id ?? 0));
      // who is in view and how they are labelled, in words; a probability alone never makes a line
      const text = faces.length
        ? faces.map(f => `${f.track_id !== undefined ? "#" + f.track_id + " " : ""}${words(f.label)}${f.static ? " (static: a picture?)" : ""}`).join(", ")
        : "no faces";
      const key = JSON.stringify(faces.map(f => [f.track_id, f.label, !!f.static]));
      if (key === lastKey) return;
      lastKey = key;
      list.prepend(el("li", { "data-frame-id": String(line.frame_id), text: `${eventTime(line)} ${text}` }));
      while (list.children.length > 50) list.lastChild.remove();
    };
    events.addEventListener("end", () => events.close());
    document.getElementById("live-explain").addEventListener("click", async () => {
      const out = document.getElementById("live-explained");
      out.dataset.state = "explaining";
      try {
        const res = await fetchRetrying(withToken(cameraPath("/v1/live/explain?method=all")),
          () => ({ method: "POST", headers: headers() }), () => setStatus("loading the explanation model..."));
        const data = await res.json();
        if (!res.ok) throw new Error(`${res.status}: ${data.error}`);
        out.replaceChildren(el("p", { text: `frame ${data.frame_id}: ${data.faces.length} face(s)` }));
        renderExplained(out, data);
        out.dataset.state = "explained";
      } catch (err) { setStatus(err.message, true); out.dataset.state = "error"; }
    });
  },
  // the source's state: "ended" (a file at its end) covers the last frame with "ended" and a replay button,
  // and the FPS and latency figures of a stream that stopped are not shown
  showState(message) {
    const stats = window.liveStats;
    stats.state = message.state;
    stats.states.push(message.state);
    document.getElementById("live-state").textContent = message.state;
    const ended = message.state === "ended";
    document.getElementById("live-ended").hidden = !ended;
    document.getElementById("live-replay").hidden = !(ended && message.replayable);
    document.getElementById("live-img").dataset.state = message.state;
    if (ended) {
      document.getElementById("live-fps").textContent = "-";
      document.getElementById("live-latency").textContent = "-";
      this.times = [];
    }
  },
  async replay() {
    try {
      const res = await fetch(withToken(cameraPath("/v1/live/replay")), { method: "POST", headers: headers() });
      if (!res.ok) throw new Error(`${res.status}: ${(await res.json()).error}`);
    } catch (err) { setStatus("replay: " + err.message, true); }
  },
  showCounts(counts) {
    const key = JSON.stringify(counts);
    const states = window.liveStats.countStates;
    if (states[states.length - 1] !== key) states.push(key);
    const ul = document.getElementById("live-counts");
    ul.replaceChildren(...Object.entries(counts).map(([k, n]) =>
      el("li", { "data-label": k, text: `${words(k)}: ${n}` })));
  },
};

// ---------------------------------------------------------------- browser webcam
// window.camStats: results received, round trips (ms), frames the server dropped as stale, frames the camera
// delivered and frames sent (each a new camera frame: never one frame twice)
window.camStats = { results: 0, rtts: [], dropped: 0, sent: 0, labels: [], cameraFrames: 0, sentFrames: [] };
const CAM_IN_FLIGHT = 2;  // frames on their way to the server at most: latency stays bounded

function rateOf(times, now) {  // events per second over the last 2 s
  while (times.length && now - times[0] > 2000) times.shift();
  return times.length > 1 ? 1000 * (times.length - 1) / (now - times[0]) : 0;
}

const Cam = {
  stream: null, ws: null, timer: null, inFlight: new Map(), times: [], cameraTimes: [],
  async start() {
    const video = document.getElementById("cam-video");
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    } catch (err) { setStatus("camera: " + err.message, true); return; }
    video.srcObject = this.stream;
    await video.play();
    document.getElementById("cam-start").disabled = true;
    document.getElementById("cam-stop").disabled = false;
    const grab = document.createElement("canvas");
    const s = window.camStats;
    this.ws = new WebSocket(wsUrl("/v1/webcam"));
    this.ws.onmessage = (ev) => this.onResult(JSON.parse(ev.data));
    this.ws.onclose = () => this.stop();
    let sent = 0;
    // called once per new camera frame: count it, and send it unless CAM_IN_FLIGHT frames are on their way
    const onCameraFrame = (frameNumber) => {
      const now = performance.now();
      s.cameraFrames += 1;
      this.cameraTimes.push(now);
      document.getElementById("cam-fps").textContent = rateOf(this.cameraTimes, now).toFixed(1);
      if (this.inFlight.size >= CAM_IN_FLIGHT || !video.videoWidth || !this.ws || this.ws.readyState !== 1) return;
      const scale = Math.min(1, 640 / video.videoWidth);
      grab.width = Math.round(video.videoWidth * scale); grab.height = Math.round(video.videoHeight * scale);
      grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
      sent += 1;
      const n = sent;
      this.inFlight.set(n, now);
      grab.toBlob((b) => { if (this.ws && this.ws.readyState === 1) this.ws.send(b); }, "image/jpeg", 0.75);
      s.sent = sent;
      s.sentFrames.push(frameNumber);
      if (s.sentFrames.length > 2000) s.sentFrames.shift();
      setTimeout(() => this.inFlight.delete(n), 3000);  // a frame the server dropped never answers
    };
    if ("requestVideoFrameCallback" in HTMLVideoElement.prototype) {
      const each = (_now, meta) => {
        if (!this.stream) return;
        onCameraFrame(meta.presentedFrames);
        video.requestVideoFrameCallback(each);
      };
      video.requestVideoFrameCallback(each);
    } else {  // no frame callback: look for a new frame (a new media time) every 10 ms
      let last = -1;
      this.timer = setInterval(() => {
        if (video.currentTime !== last) { last = video.currentTime; onCameraFrame(last); }
      }, 10);
    }
  },
  onResult(r) {
    if (r.error) { setStatus("webcam: " + r.error, true); return; }
    const t0 = this.inFlight.get(r.frame);
    // frames are answered in order; every older one still waiting was dropped by the server
    for (const k of [...this.inFlight.keys()]) if (k <= r.frame) this.inFlight.delete(k);
    const now = performance.now();
    const s = window.camStats;
    s.results += 1; s.dropped = r.dropped;
    if (t0 !== undefined) { s.rtts.push(now - t0); if (s.rtts.length > 2000) s.rtts.shift(); }
    this.times.push(now);
    document.getElementById("cam-rate").textContent = rateOf(this.times, now).toFixed(1);
    document.getElementById("cam-rtt").textContent = t0 !== undefined ? `${Math.round(now - t0)} ms` : "-";
    document.getElementById("cam-dropped").textContent = String(r.dropped);
    const overlay = document.getElementById("cam-overlay");
    overlay.width = r.width; overlay.height = r.height;
    const ctx = overlay.getContext("2d");
    ctx.clearRect(0, 0, r.width, r.height);
    drawFaces(ctx, r.faces, Math.max(1, r.width / 800));
    s.labels = r.faces.map(f => f.label);
    const ul = document.getElementById("cam-faces");
    ul.replaceChildren(...r.faces.map((f, i) => faceItem(f, i)));
    overlay.dataset.results = String(s.results);
  },
  stop() {
    clearInterval(this.timer); this.timer = null;
    if (this.ws) { const ws = this.ws; this.ws = null; ws.onclose = null; ws.close(); }
    if (this.stream) { for (const t of this.stream.getTracks()) t.stop(); this.stream = null; }
    document.getElementById("cam-start").disabled = false;
    document.getElementById("cam-stop").disabled = true;
  },
};
document.getElementById("live-replay").addEventListener("click", () => Live.replay());
document.getElementById("cam-start").addEventListener("click", () => Cam.start());
document.getElementById("cam-stop").addEventListener("click", () => Cam.stop());

// ---------------------------------------------------------------- start
(async function init() {
  try {
    const res = await fetch(withToken("/v1/summary"), { headers: headers() });
    if (!res.ok) throw new Error(`${res.status}: ${(await res.json()).error}`);
    const s = await res.json();
    Object.assign(WORDS, s.display_names || {});
    const cameras = s.cameras ? s.cameras.cameras.map((c) => c.name) : [];
    document.getElementById("tab-live").hidden = !(s.live || cameras.includes(CAMERA));
    document.getElementById("tab-site").hidden = !cameras.length;
    document.getElementById("tab-site").href = withToken("/site");
    if (CAMERA && cameras.includes(CAMERA)) {  // a camera of the Site: its Live view
      document.getElementById("tab-live").textContent = "Live: " + CAMERA;
      document.title = "livemask: " + CAMERA;
    }
    let wanted = new URLSearchParams(location.search).get("mode");
    if (!wanted && CAMERA) wanted = "live";
    if (wanted && document.querySelector(`.tab[data-mode="${wanted}"]:not([hidden])`)) showMode(wanted);
    setStatus(`model classes: ${s.class_names.map(words).join(", ")}`);
    document.body.dataset.ready = "1";
  } catch (err) {
    setStatus(err.message, true);
  }
})();
