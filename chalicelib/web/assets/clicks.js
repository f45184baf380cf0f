'use strict';
// The clicks page: clicks on the board are drawn, batched and sent to POST /clicks; the
// page polls GET /hotspots and paints each hotspot as a red square that fades in and out.
(() => {
  const params = new URLSearchParams(location.search);
  const pageId = params.get('page') || 'demo';
  const pollMs = 1000 * Math.max(0.2, Number(params.get('poll')) || 1);
  const flushMs = Math.max(50, Number(params.get('flush')) || 400);
  const MAX_BATCH = 500;            // POST /clicks takes 1..500 clicks
  const MAX_DOTS = 2000;            // clicks kept on screen
  const EMPTY_POLL_MAX_MS = 10000;  // a page without clicks is asked again at most this late
  const RECENT_SEND_MS = 10000;     // after sending, clicks may be on their way for this long
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
    queue.push({x, y, t: Date.now(), id: hexId(16)});
  });

  // Batches: every flushMs, up to 500 clicks a request.  A 503 lists the clicks that did
  // not get in ('failed'): only those are queued again.
  async function flush() {
    if (sending || queue.length === 0) return;
    sending = true;
    const batch = queue.slice(0, MAX_BATCH);
    queue = queue.slice(batch.length);
    try {
      const {body} = await Pulse.requestJSON('/clicks', {
        method: 'POST', headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({page: pageId, session, clicks: batch})});
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

  // A page without clicks answers 404: the empty state, asked again less and less often
  // (up to EMPTY_POLL_MAX_MS) unless this browser has just sent clicks.
  async function poll() {
    let body;
    try {
      body = (await Pulse.requestJSON(`/hotspots?page=${encodeURIComponent(pageId)}`)).body;
    } catch (err) {
      if (!(err instanceof Pulse.HttpError && err.status === 404)) throw err;
      body = {hotspots: [], window: {clicks: 0}};
    }
    retry.hidden = true;
    update(body.hotspots);
    const clicks = (body.window && body.window.clicks) || 0;
    if (clicks > 0) {
      emptyPolls = 0;
      Pulse.setStatus(stateEl, body.hotspots.length
        ? `${body.hotspots.length} hotspot${body.hotspots.length === 1 ? '' : 's'} among the last ${clicks} clicks.`
        : `No hotspot yet among the last ${clicks} clicks: a hotspot needs many clicks close together.`);
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
  window.addEventListener('resize', resize);
  resize();
  requestAnimationFrame(draw);
  setInterval(flush, flushMs);
  poller.start();
})();
