'use strict';
// The clicks page: clicks on the board are drawn, batched and sent to POST /clicks with
// the page's viewport class; the page polls GET /hotspots (the hotspots, then the heatmap
// of the same segment and time) and paints the heatmap under the hotspots, each a red
// square that fades in and out.
(() => {
  const params = new URLSearchParams(location.search);
  const pageId = params.get('page') || 'demo';
  const pollMs = 1000 * Math.max(0.2, Number(params.get('poll')) || 1);
  const flushMs = Math.max(50, Number(params.get('flush')) || 400);
  const MAX_BATCH = 100;            // POST /clicks takes 1..100 clicks
  const MAX_DOTS = 2000;            // clicks kept on screen
  const EMPTY_POLL_MAX_MS = 10000;  // a page without clicks is asked again at most this late
  const RECENT_SEND_MS = 10000;     // after sending, clicks may be on their way for this long
  const GRID = 32;                  // heatmap cells a side
  // The heatmap's colour scale: value / max from 0 to 1 through these stops (a viridis-like
  // scale: lightness grows with the value, and it reads in greyscale and for red-green
  // colour blindness); opacity grows with it up to a third of the max, so an empty cell is
  // transparent and the kernel's faint tails fade out instead of showing its square support.
  const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  document.getElementById('page-id').textContent = pageId;

  const hexId = n => Array.from(crypto.getRandomValues(new Uint8Array(n)),
    b => b.toString(16).padStart(2, '0')).join('');
  // One partition key per tab session: spreads clients over shards, keeps a session in order.
  const session = sessionStorage.getItem('pulse-session') || hexId(8);
  sessionStorage.setItem('pulse-session', session);

  const canvas = document.getElementById('board');
  const ctx = canvas.getContext('2d');
  const statusEl = document.getElementById('status');
  const stateEl = document.getElementById('hotspots-state');
  const retry = document.getElementById('retry');
  const segmentEl = document.getElementById('segment');
  const sinceEl = document.getElementById('since');
  const heat = document.createElement('canvas');  // the heatmap, one pixel a cell
  heat.width = heat.height = GRID;
  let heatShown = false;
  const dots = [];                  // {x, y} in 0..1
  let queue = [];                   // clicks not sent yet
  let sending = false;
  let spots = [];                   // painted hotspots: {min, max, count, density, alpha, target}
  let emptyPolls = 0;               // answers in a row that the page has no clicks
  let lastSentAt = 0;

  function resize() {
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(canvas.clientWidth * ratio);
    canvas.height = Math.round(canvas.clientHeight * ratio);
  }

  canvas.addEventListener('click', ev => {
    const rect = canvas.getBoundingClientRect();
    const x = Math.min(1, Math.max(0, (ev.clientX - rect.left) / rect.width));
    const y = Math.min(1, Math.max(0, (ev.clientY - rect.top) / rect.height));
    dots.push({x, y});
    if (dots.length > MAX_DOTS) dots.shift();
    // Each click's own id: a click resent after a 503 or a lost answer is counted once.
    queue.push({x, y, t: Date.now(), id: hexId(16), viewport: viewportClass()});
  });

  // The width class of this page, as the segments of GET /hotspots count it.
  function viewportClass() {
    const w = window.innerWidth;
    return w < 600 ? 'phone' : w < 1024 ? 'tablet' : 'desktop';
  }

  // Batches: every flushMs, up to 100 clicks a request.  A 503 lists the clicks that did
  // not get in ('failed'): only those are queued again.
  async function flush() {
    if (sending || queue.length === 0) return;
    sending = true;
    // one viewport class a request: the clicks up to the first made at another width
    const viewport = queue[0].viewport;
    let n = 0;
    while (n < Math.min(MAX_BATCH, queue.length) && queue[n].viewport === viewport) n += 1;
    const batch = queue.slice(0, n);
    queue = queue.slice(n);
    try {
      const {body} = await Pulse.requestJSON('/clicks', {
        method: 'POST', headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({page: pageId, session, viewport,
                              clicks: batch.map(({x, y, t, id}) => ({x, y, t, id}))})});
      Pulse.setStatus(statusEl, `Sent ${body.accepted} click${body.accepted === 1 ? '' : 's'}.`);
      lastSentAt = Date.now();
      if (emptyPolls > 0) poller.start();  // the page was empty: look again soon
    } catch (err) {
      const answer = err instanceof Pulse.HttpError ? err.body : {};
      if (err instanceof Pulse.HttpError && err.status === 503 && Array.isArray(answer.failed)) {
        queue = answer.failed.map(f => batch[f.index]).concat(queue);
        Pulse.setStatus(statusEl, `${answer.failed.length} clicks will be resent.`, 'error');
      } else if (err instanceof Pulse.HttpError && err.final) {
        Pulse.setStatus(statusEl, answer.message || `Clicks refused (${err.status}).`, 'error');
      } else {
        queue = batch.concat(queue);
        Pulse.setStatus(statusEl, `${Pulse.describe(err)}; the clicks will be resent.`, 'error');
      }
    } finally {
      sending = false;
    }
  }

  function overlap(a, b) {
    const w = Math.min(a.max[0], b.max[0]) - Math.max(a.min[0], b.min[0]);
    const h = Math.min(a.max[1], b.max[1]) - Math.max(a.min[1], b.min[1]);
    return w >= 0 && h >= 0;
  }

  // A new answer: hotspots overlapping a painted one take its place (no flicker), the
  // painted ones no longer there fade out, new ones fade in.
  function update(hotspots) {
    const maxDensity = Math.max(1, ...hotspots.map(h => h.density));
    const kept = new Set();
    for (const h of hotspots) {
      const target = 0.2 + 0.55 * Math.sqrt(h.density / maxDensity);
      const old = spots.find(s => !kept.has(s) && s.target > 0 && overlap(s, h));
      if (old) {
        Object.assign(old, h, {target});
        kept.add(old);
      } else {
        const s = {...h, alpha: 0, target};
        spots.push(s);
        kept.add(s);
      }
    }
    for (const s of spots) if (!kept.has(s)) s.target = 0;
    document.getElementById('hotspots').replaceChildren(...hotspots.map(h => Pulse.el('li', '',
      `${h.count} clicks in [${h.min.map(v => v.toFixed(3))}] – ` +
      `[${h.max.map(v => v.toFixed(3))}], density ${Math.round(h.density)}`)));
    canvas.dataset.hotspots = String(hotspots.length);
  }

  // The heatmap's colour for a value from 0 to 1, as [r, g, b, alpha 0..255].
  function colour(f) {
    const at = Math.min(1, Math.max(0, f)) * (STOPS.length - 1);
    const i = Math.min(STOPS.length - 2, Math.floor(at));
    const k = at - i;
    const rgb = STOPS[i].map((c, j) => Math.round(c + (STOPS[i + 1][j] - c) * k));
    return [...rgb, Math.round(255 * 0.7 * Math.min(1, 3 * f))];
  }

  function drawLegend() {
    const legend = document.getElementById('legend');
    const img = legend.getContext('2d').createImageData(legend.width, 1);
    for (let i = 0; i < legend.width; i++) img.data.set(colour(i / (legend.width - 1)), 4 * i);
    legend.getContext('2d').putImageData(img, 0, 0);
  }

  // A heatmap answer into the one-pixel-a-cell canvas (drawn scaled up, smoothed); an
  // answer without one (or with no clicks) clears it.
  function paintHeat(answer) {
    const map = answer && answer.heatmap;
    const ctx2 = heat.getContext('2d');
    heatShown = Boolean(map && map.max > 0 && map.grid === GRID);
    document.getElementById('legend-max').textContent =
      heatShown ? `${map.max.toFixed(2)} clicks per cell` : '—';
    if (!heatShown) {
      ctx2.clearRect(0, 0, GRID, GRID);
      return;
    }
    const img = ctx2.createImageData(GRID, GRID);
    map.cells.forEach((row, r) => row.forEach((v, c) => {
      img.data.set(colour(v / map.max), 4 * (r * GRID + c));
    }));
    ctx2.putImageData(img, 0, 0);
  }

  function query() {
    const q = new URLSearchParams({page: pageId});
    if (segmentEl.value !== 'all') q.set('segment', segmentEl.value);
    if (sinceEl.value) q.set('since', sinceEl.value);
    return q;
  }

  function which() {
    const parts = [];
    if (segmentEl.value !== 'all') parts.push(segmentEl.selectedOptions[0].textContent.split(' (')[0]);
    if (sinceEl.value) parts.push(`in ${sinceEl.selectedOptions[0].textContent}`);
    return parts.length ? ` (${parts.join(', ')})` : '';
  }

  // A page without clicks is an empty answer: the empty state, asked again less and less
  // often (up to EMPTY_POLL_MAX_MS) unless this browser has just sent clicks.  The heatmap
  // is asked for once the hotspots say there are clicks to show.
  async function poll(current) {
    const q = query();
    const body = (await Pulse.requestJSON(`/hotspots?${q}`)).body || {};
    const clicks = (body.window && body.window.clicks) || 0;
    let heatAnswer = null;
    if (clicks > 0) {
      q.set('view', 'heatmap');
      q.set('grid', String(GRID));
      heatAnswer = (await Pulse.requestJSON(`/hotspots?${q}`)).body;
    }
    if (!current()) return pollMs;  // the controls changed meanwhile: a newer run draws
    retry.hidden = true;
    const hotspots = Array.isArray(body.hotspots) ? body.hotspots : [];
    update(hotspots);
    paintHeat(heatAnswer);
    if (clicks > 0) {
      emptyPolls = 0;
      Pulse.setStatus(stateEl, hotspots.length
        ? `${hotspots.length} hotspot${hotspots.length === 1 ? '' : 's'} among the last ${clicks} clicks${which()}.`
        : `No hotspot yet among the last ${clicks} clicks${which()}: a hotspot needs many clicks close together.`);
      return pollMs;
    }
    if (which()) {
      Pulse.setStatus(stateEl, `No clicks${which()}: choose every screen or the whole window to see more.`);
      return pollMs;
    }
    Pulse.setStatus(stateEl, 'No clicks on this page yet: click the board.');
    if (Date.now() - lastSentAt < RECENT_SEND_MS) return pollMs;
    emptyPolls += 1;
    return Math.min(EMPTY_POLL_MAX_MS, pollMs * 2 ** emptyPolls);
  }

  const poller = Pulse.loop(poll, {
    every: pollMs,
    onFailure(err, delay) {
      // keep what is painted; say what failed and when it is tried again
      Pulse.setStatus(stateEl, Pulse.failureText('the hotspots', err, delay), 'error');
      retry.hidden = delay === null;
    },
  });

  function draw() {
    const w = canvas.width, h = canvas.height;
    ctx.clearRect(0, 0, w, h);
    if (heatShown) {
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(heat, 0, 0, w, h);
    }
    for (const s of spots) {
      s.alpha += (s.target - s.alpha) * 0.12;      // fade towards the target opacity
    }
    spots = spots.filter(s => s.target > 0 || s.alpha > 0.01);
    const pad = 6 * (window.devicePixelRatio || 1);  // a hotspot of one spot is still visible
    for (const s of spots) {
      ctx.fillStyle = `rgba(207, 34, 46, ${s.alpha.toFixed(3)})`;
      const x0 = s.min[0] * w - pad, y0 = s.min[1] * h - pad;
      ctx.fillRect(x0, y0, (s.max[0] - s.min[0]) * w + 2 * pad, (s.max[1] - s.min[1]) * h + 2 * pad);
    }
    ctx.fillStyle = '#0969da';
    const r = 2.5 * (window.devicePixelRatio || 1);
    for (const d of dots) {
      ctx.beginPath();
      ctx.arc(d.x * w, d.y * h, r, 0, 2 * Math.PI);
      ctx.fill();
    }
    requestAnimationFrame(draw);
  }

  retry.addEventListener('click', () => poller.start());
  for (const control of [segmentEl, sinceEl]) {
    control.addEventListener('change', () => {
      Pulse.setStatus(stateEl, 'Looking for clicks…');
      poller.start();
    });
  }
  drawLegend();
  window.addEventListener('resize', resize);
  resize();
  requestAnimationFrame(draw);
  setInterval(flush, flushMs);
  poller.start();
})();
