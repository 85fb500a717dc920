// The Site page: a tile per camera (frames, state, people in view, a border for the worst verdict), site totals,
// one event list naming the camera of each line; a click on a tile opens the camera's Live view (the
// single-source page with ?camera=NAME: stream, freeze and explain); an ended file camera's tile has a replay
// button. The tiles' frames come over one WebSocket (/v1/cameras/tiles) as one mosaic JPEG per update: one
// decode for the whole grid, each tile's slice drawn into its own canvas; only the tiles in view are sent.
"use strict";

const TOKEN = new URLSearchParams(location.search).get("token");
const withToken = (url) => TOKEN ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(TOKEN) : url;
const TILES_FPS = 8;  // grid updates a second, at most (the server paces them and waits for each to be drawn)
const EVENTS_MS = 250;  // new event lines are added to the list this often, together
const MAX_EVENTS = 200;
const tiles = new Map();
let names = {};

function text(el, value) { if (el.textContent !== value) el.textContent = value; }

// a state line that may hold a path (a failed camera's): it may break after a "/" or "\\", not inside a name
function stateText(el, value) {
  if (el.textContent === value) return;
  const parts = value.split(/(?<=[\/\\])/);
  el.replaceChildren(...parts.flatMap((part, i) => (i ? [document.createElement("wbr"), part] : [part])));
}

function countsLine(inView) {
  const parts = Object.entries(inView || {}).filter(([, n]) => n > 0).map(([c, n]) => `${names[c] || c} ${n}`);
  return parts.length ? parts.join(", ") : "nobody in view";
}

function stateClass(state) { return state.split(/[ :]/)[0]; }

function makeTile(cam) {
  const tile = document.createElement("div");
  tile.className = "tile";
  tile.dataset.camera = cam.name;
  tile.innerHTML = '<div class="tile-head"><span class="tile-name"></span><span class="tile-state"></span></div>' +
    '<canvas class="tile-frame" role="img"></canvas><div class="tile-counts"></div>';
  tile.querySelector(".tile-name").textContent = cam.name;
  const canvas = tile.querySelector("canvas.tile-frame");
  canvas.setAttribute("aria-label", `camera ${cam.name}`);
  canvas.width = 320;
  canvas.height = 240;
  canvas.style.visibility = "hidden";  // no black box before the first frame (or ever, for a failed camera)
  tile.addEventListener("click", () => { location.href = liveViewUrl(cam.name); });
  document.getElementById("tiles").appendChild(tile);
  const entry = {el: tile, canvas, ctx: canvas.getContext("2d"), frames: -1, loaded: 0, visible: true};
  tiles.set(cam.name, entry);
  if (viewed) viewed.observe(tile);
  return entry;
}

function updateTile(cam) {
  const entry = tiles.get(cam.name) || makeTile(cam);
  const state = entry.el.querySelector(".tile-state");
  stateText(state, cam.state);
  state.className = "tile-state " + stateClass(cam.state);
  entry.el.dataset.state = cam.state;
  text(entry.el.querySelector(".tile-counts"), countsLine(cam.in_view));
  entry.el.className = "tile" + (cam.worst ? " worst-" + cam.worst : "");
  entry.frames = cam.frames;
  showReplay(entry, cam);
}

// a camera's Live view: the single-source page and its routes with ?camera=NAME
function liveViewUrl(name) { return withToken("/?mode=live&camera=" + encodeURIComponent(name)); }

// a file camera at its end: a replay button on its tile (POST /v1/live/replay?camera=NAME)
function showReplay(entry, cam) {
  let button = entry.el.querySelector(".tile-replay");
  const wanted = cam.replayable && cam.state === "ended";
  if (!wanted) { if (button) button.remove(); return; }
  if (button) return;
  button = document.createElement("button");
  button.className = "button tile-replay";
  button.textContent = "Replay";
  button.addEventListener("click", async (ev) => {
    ev.stopPropagation();  // the tile's own click opens the Live view
    button.disabled = true;
    const r = await fetch(withToken(`/v1/live/replay?camera=${encodeURIComponent(cam.name)}`), {method: "POST"});
    if (!r.ok) button.disabled = false;
  });
  entry.el.querySelector(".tile-head").appendChild(button);
}

// -- the tiles' frames: one WebSocket, one mosaic JPEG per update -----------------------------------------------
let tilesSocket = null;

// the tiles in view (IntersectionObserver; none while the tab is hidden): the server sends only those
const viewed = "IntersectionObserver" in window ? new IntersectionObserver((seen) => {
  for (const e of seen) {
    const entry = tiles.get(e.target.dataset.camera);
    if (entry) entry.visible = e.isIntersecting;
  }
  sayVisible();
}) : null;

function sayVisible() {
  if (!tilesSocket || tilesSocket.readyState !== WebSocket.OPEN) return;
  const shown = document.hidden ? [] : [...tiles].filter(([, e]) => e.visible).map(([n]) => n);
  tilesSocket.send(JSON.stringify({visible: shown}));
}

async function drawMosaic(head, blob) {
  try {
    const bitmap = await createImageBitmap(blob);
    for (const t of head.tiles) {
      const entry = tiles.get(t.camera);
      if (!entry) continue;
      if (entry.canvas.width !== t.w || entry.canvas.height !== t.h) {
        entry.canvas.width = t.w;
        entry.canvas.height = t.h;
      }
      entry.ctx.drawImage(bitmap, t.x, t.y, t.w, t.h, 0, 0, t.w, t.h);
      entry.loaded += 1;  // an update: a new frame of this camera drawn
      if (entry.loaded === 1) entry.canvas.style.visibility = "visible";
      entry.el.dataset.loaded = entry.loaded;
    }
    bitmap.close();
  } catch (err) { /* a broken image: the next update draws again */ }
}

function tileFrames() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(scheme + location.host + withToken(`/v1/cameras/tiles?fps=${TILES_FPS}`));
  ws.binaryType = "blob";
  tilesSocket = ws;
  let head = null;
  let drawn = Promise.resolve();  // mosaics are drawn one after the other, in the order they came
  ws.onopen = sayVisible;
  ws.onmessage = (msg) => {
    if (typeof msg.data === "string") { head = JSON.parse(msg.data); return; }
    const drawing = head;
    head = null;
    drawn = drawn.then(async () => {
      if (drawing) await drawMosaic(drawing, msg.data);
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({drawn: drawing ? drawing.mosaic : 0}));
    });
  };
  ws.onclose = () => { tilesSocket = null; setTimeout(tileFrames, 2000); };  // the server went away: try again
}

document.addEventListener("visibilitychange", sayVisible);

async function poll() {
  try {
    const r = await fetch(withToken("/v1/cameras"));
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const data = await r.json();
    for (const cam of data.cameras) updateTile(cam);
    const site = data.site;
    text(document.getElementById("total-cameras"), String(data.cameras.length));
    text(document.getElementById("total-people"), String(site.counted));
    text(document.getElementById("total-masked"),
         site.share_masked === null ? "-" : `${site.masked} (${Math.round(site.share_masked * 100)}%)`);
    text(document.getElementById("total-alerts"), String(site.alerts));
    text(document.getElementById("status"), "");
    document.body.dataset.ready = "1";
  } catch (err) {
    const status = document.getElementById("status");
    status.textContent = `cannot reach the server (${err.message})`;
    status.className = "error";
  }
  setTimeout(poll, 500);
}

// old links to /site#camera=NAME open that camera's Live view
function route() {
  const m = location.hash.match(/^#camera=(.+)$/);
  if (m) location.replace(liveViewUrl(decodeURIComponent(m[1])));
}

function eventLine(line) {
  let what;
  if (line.alert) what = `alert: ${names[line.alert.label] || line.alert.label || "face"} (track ${line.alert.track_id})`;
  else if (!line.faces || !line.faces.length) return null;  // frames without faces would flood the list
  else what = "frame " + line.frame_id + ": " + line.faces.map((f) => names[f.label] || f.label).join(", ");
  const li = document.createElement("li");
  li.dataset.camera = line.camera;
  const cam = document.createElement("span");
  cam.className = "cam";
  cam.textContent = line.camera;
  li.append(cam, document.createTextNode(what));
  return li;
}

// every camera's lines arrive as they come (up to one per frame of each camera); the list takes them together,
// a few times a second, and only the newest MAX_EVENTS
function events() {
  const list = document.getElementById("site-events");
  let pending = [];
  const flush = () => {
    const lines = pending.slice(-MAX_EVENTS);
    pending = [];
    const items = document.createDocumentFragment();
    for (let i = lines.length - 1; i >= 0; i--) {
      const li = eventLine(lines[i]);
      if (li) items.appendChild(li);
    }
    list.prepend(items);
    while (list.children.length > MAX_EVENTS) list.lastChild.remove();
  };
  setInterval(() => { if (pending.length) flush(); }, EVENTS_MS);
  const source = new EventSource(withToken("/v1/events"));
  source.onmessage = (msg) => {
    const line = JSON.parse(msg.data);
    if (line.alert || (line.faces && line.faces.length)) pending.push(line);
  };
  source.addEventListener("end", () => { source.close(); flush(); });
}

async function start() {
  try {
    const r = await fetch(withToken("/v1/summary"));
    if (r.ok) names = (await r.json()).display_names || {};
  } catch (err) { /* names stay the class names */ }
  window.addEventListener("hashchange", route);
  route();
  await poll();
  tileFrames();
  events();
  remoteCameras();
  trends();
}

// -- cameras of other machines (mqtt.site: GET /v1/site): a tile each, no video ---------------------------------
const REMOTE_MS = 2000;

function remoteTile(cam) {
  const box = document.getElementById("remote-tiles");
  let tile = box.querySelector(`.tile[data-remote="${CSS.escape(cam.id)}"]`);
  if (!tile) {
    tile = document.createElement("div");
    tile.dataset.remote = cam.id;
    tile.dataset.camera = cam.name;
    tile.innerHTML = '<div class="tile-head"><span class="tile-name"></span><span class="tile-state"></span></div>' +
      '<div class="tile-remote"></div><div class="tile-counts"></div><div class="tile-share"></div>' +
      '<div class="tile-alert"></div>';
    tile.querySelector(".tile-name").textContent = cam.name;
    tile.querySelector(".tile-remote").textContent = `remote: ${cam.publisher}`;
    box.appendChild(tile);
  }
  return tile;
}

function updateRemote(cam) {
  const tile = remoteTile(cam);
  const s = cam.state || {};
  const state = cam.online ? (s.source === "running" ? "live" : (s.source || "online")) : "offline";
  text(tile.querySelector(".tile-state"), state);
  tile.querySelector(".tile-state").className = "tile-state " + stateClass(state);
  tile.dataset.state = state;
  text(tile.querySelector(".tile-counts"), countsLine(s.in_view_by_class));
  text(tile.querySelector(".tile-share"), s.masked_share === null || s.masked_share === undefined
    ? `people so far ${s.people_counted || 0}`
    : `people so far ${s.people_counted}, masked ${Math.round(s.masked_share * 100)}%`);
  const alert = cam.last_alert;
  text(tile.querySelector(".tile-alert"), alert
    ? `last alert: ${names[alert.label] || alert.label} at ${new Date(alert.time * 1000).toLocaleTimeString()}` : "");
  const worst = s.in_view_by_class ? SEVERITY_JS.find((c) => s.in_view_by_class[c] > 0) : null;
  tile.className = "tile remote" + (cam.online ? "" : " offline") + (worst && cam.online ? " worst-" + worst : "");
}

const SEVERITY_JS = ["no_mask", "mask_incorrect", "mask"];

async function remoteCameras() {
  try {
    const r = await fetch(withToken("/v1/site"));
    if (r.status === 404) return;  // mqtt.site is off: no remote cameras, stop asking
    if (r.ok) {
      const data = await r.json();
      for (const cam of data.cameras) if (!cam.local) updateRemote(cam);
      document.body.dataset.remoteReady = "1";
    }
  } catch (err) { /* the server is away: poll() says so */ }
  setTimeout(remoteCameras, REMOTE_MS);
}

// -- each tile's masked share over the last hour, from the kept events (GET /v1/cameras/trend) ------------------
const TREND_MS = 10000;

function trendCanvas(name) {
  const entry = tiles.get(name);
  if (!entry) return null;
  let canvas = entry.el.querySelector("canvas.tile-trend");
  if (!canvas) {
    canvas = document.createElement("canvas");
    canvas.className = "tile-trend";
    canvas.width = 280;
    canvas.height = 48;
    canvas.setAttribute("aria-label", `camera ${name}: masked share over the last hour`);
    canvas.title = "masked share, last hour";
    entry.el.appendChild(canvas);
  }
  return canvas;
}

async function trends() {
  try {
    const r = await fetch(withToken("/v1/cameras/trend"));
    if (r.status === 404) return;  // report.keep_events is off: nothing kept to chart
    const link = document.getElementById("nav-report");  // today's report of what the server keeps
    link.href = withToken("/v1/report");
    link.hidden = false;
    if (r.ok) {
      const data = await r.json();
      for (const [name, points] of Object.entries(data.cameras)) {
        const canvas = trendCanvas(name);
        if (!canvas || !window.livemaskTrend) continue;
        canvas.dataset.points = String(points.length);
        window.livemaskTrend.draw(canvas, points.map((p) => ({ t: p.t * 1000, share: p.share })));
      }
    }
  } catch (err) { /* tried again later */ }
  setTimeout(trends, TREND_MS);
}

start();
