// The Site page: a tile per camera (polled frames, state, people in view, a border for the worst verdict),
// site totals, one event list naming the camera of each line; a click on a tile opens the camera's Live view
// (the single-source page with ?camera=NAME: stream, freeze and explain); an ended file camera's tile has a
// replay button.
"use strict";

const TOKEN = new URLSearchParams(location.search).get("token");
const withToken = (url) => TOKEN ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(TOKEN) : url;
const TILE_MS = 100;  // each tile asks for its newest frame this often (up to 10 fps in the grid)
const MAX_EVENTS = 200;
const tiles = new Map();
let names = {};

function text(el, value) { if (el.textContent !== value) el.textContent = value; }

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
    '<img alt=""><div class="tile-counts"></div>';
  tile.querySelector(".tile-name").textContent = cam.name;
  tile.querySelector("img").alt = `camera ${cam.name}`;
  tile.addEventListener("click", () => { location.href = liveViewUrl(cam.name); });
  document.getElementById("tiles").appendChild(tile);
  const entry = {el: tile, img: tile.querySelector("img"), frames: -1, loading: false, loaded: 0};
  entry.img.style.visibility = "hidden";  // no broken-image icon before the first frame (or ever, for a failed camera)
  entry.img.addEventListener("load", () => {
    entry.loading = false;
    entry.loaded += 1;
    tile.dataset.loaded = entry.loaded;
    entry.img.style.visibility = "visible";
  });
  entry.img.addEventListener("error", () => { entry.loading = false; });
  tiles.set(cam.name, entry);
  return entry;
}

function updateTile(cam) {
  const entry = tiles.get(cam.name) || makeTile(cam);
  const state = entry.el.querySelector(".tile-state");
  text(state, cam.state);
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

function refreshFrames() {
  if (!document.getElementById("site-view").hidden) {
    for (const [name, entry] of tiles) {
      if (entry.loading || entry.frames <= 0 || entry.el.dataset.state === "ended") continue;
      entry.loading = true;
      entry.img.src = withToken(`/v1/cameras/${encodeURIComponent(name)}/frame.jpg?t=${Date.now()}`);
    }
  }
  setTimeout(refreshFrames, TILE_MS);
}

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

function events() {
  const list = document.getElementById("site-events");
  const source = new EventSource(withToken("/v1/events"));
  source.onmessage = (msg) => {
    const line = JSON.parse(msg.data);
    let what;
    if (line.alert) what = `alert: ${names[line.alert.label] || line.alert.label || "face"} (track ${line.alert.track_id})`;
    else if (!line.faces || !line.faces.length) return;  // frames without faces would flood the list
    else what = "frame " + line.frame_id + ": " + line.faces.map((f) => names[f.label] || f.label).join(", ");
    const li = document.createElement("li");
    li.dataset.camera = line.camera;
    const cam = document.createElement("span");
    cam.className = "cam";
    cam.textContent = line.camera;
    li.append(cam, document.createTextNode(what));
    list.prepend(li);
    while (list.children.length > MAX_EVENTS) list.lastChild.remove();
  };
  source.addEventListener("end", () => source.close());
}

async function start() {
  try {
    const r = await fetch(withToken("/v1/summary"));
    if (r.ok) names = (await r.json()).display_names || {};
  } catch (err) { /* names stay the class names */ }
  window.addEventListener("hashchange", route);
  route();
  poll();
  refreshFrames();
  events();
}

start();
