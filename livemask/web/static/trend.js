// The "masked share, last hour" chart: window.livemaskTrend.draw(canvas, points) draws points {t (ms), share
// 0..1 or null} of the last hour on a small canvas (the Site page's tiles use it too, see site.js).
// On the Live page it also adds the chart and the link to today's report: it polls /v1/summary (the people
// stage's running totals) every POLL_MS; the share at each moment is that of the people counted in the hour
// before it (from the totals this page has seen, so the window starts when the page opens). Needs nothing
// else from app.js.
(() => {
  "use strict";
  const POLL_MS = 10000;
  const WINDOW_MS = 3600 * 1000;

  function drawTrend(canvas, points, now) {
    const ctx = canvas.getContext("2d");
    const w = canvas.width, h = canvas.height;
    now = now || Date.now();
    ctx.clearRect(0, 0, w, h);
    ctx.strokeStyle = "#ccc";
    ctx.strokeRect(0.5, 0.5, w - 1, h - 1);
    ctx.fillStyle = "#888";
    ctx.font = "9px sans-serif";
    ctx.fillText("100 %", 2, 9);
    ctx.fillText("0 %", 2, h - 2);
    const shown = points.filter((p) => p.share !== null && now - p.t <= WINDOW_MS);
    canvas.dataset.drawn = String(shown.length);
    if (!shown.length) return;
    ctx.strokeStyle = "#2e7d32";
    ctx.fillStyle = "#2e7d32";
    ctx.lineWidth = 2;
    ctx.beginPath();
    shown.forEach((p, i) => {
      const x = w - (now - p.t) / WINDOW_MS * w;
      const y = h - 3 - p.share * (h - 6);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
    if (shown.length === 1) {  // one point: a dot, not an invisible line
      const p = shown[0];
      ctx.beginPath();
      ctx.arc(w - (now - p.t) / WINDOW_MS * w, h - 3 - p.share * (h - 6), 2.5, 0, 2 * Math.PI);
      ctx.fill();
    }
  }
  window.livemaskTrend = { draw: drawTrend, WINDOW_MS };

  const TOKEN = new URLSearchParams(location.search).get("token");
  const withToken = (url) => TOKEN ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(TOKEN) : url;
  const aside = document.querySelector("#mode-live aside");
  if (!aside) return;

  const box = document.createElement("div");
  box.id = "trend";
  box.innerHTML = '<h3>Masked share, last hour</h3>' +
    '<canvas id="trend-canvas" width="240" height="70" aria-label="masked share over the last hour"></canvas>' +
    '<div class="stat"><span class="stat-label">now</span> <span id="trend-now">-</span></div>' +
    '<a id="trend-report" target="_blank" rel="noopener">Today\'s report</a>';
  aside.appendChild(box);
  document.getElementById("trend-report").href = withToken("/v1/report");
  const canvas = document.getElementById("trend-canvas");
  const samples = []; // {t, counted, masked}
  const points = [];  // {t, share}

  function draw() { drawTrend(canvas, points); }

  async function poll() {
    try {
      const res = await fetch(withToken("/v1/summary"));
      const body = res.ok ? await res.json() : null;
      // a camera of the Site page (?camera=NAME): its own totals, from the summary's cameras
      const camera = new URLSearchParams(location.search).get("camera");
      const source = body && camera && body.cameras ? body.cameras.cameras.find((c) => c.name === camera) : body && body.live;
      const people = source ? source.people : null;
      if (people && typeof people.counted === "number") {
        const now = Date.now();
        samples.push({ t: now, counted: people.counted, masked: people.masked });
        while (samples.length > 1 && now - samples[1].t > WINDOW_MS) samples.shift();
        const first = samples[0];
        const counted = people.counted - (samples.length > 1 ? first.counted : 0);
        const masked = people.masked - (samples.length > 1 ? first.masked : 0);
        const share = counted > 0 ? Math.min(Math.max(masked / counted, 0), 1) : null;
        points.push({ t: now, share });
        while (points.length && now - points[0].t > WINDOW_MS) points.shift();
        document.getElementById("trend-now").textContent =
          share === null ? "no people yet" : `${(100 * share).toFixed(0)} % of ${counted}`;
        canvas.dataset.points = String(points.filter((p) => p.share !== null).length);
      }
    } catch (err) {
      // the server is gone or restarting: keep the chart, try again later
    }
    draw();
  }
  poll();
  setInterval(poll, POLL_MS);
})();
