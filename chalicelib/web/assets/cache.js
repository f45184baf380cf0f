'use strict';
// The cache page: calls to /upstream/<name>[/<item>] as the user asks, each listed with
// its X-Cache and latency; the latencies as bars on a labelled log scale.
(() => {
  const $ = id => document.getElementById(id);
  const el = Pulse.el;
  const calls = [];

  function path() {
    const name = $('name').value.trim();
    const item = $('item').value.trim();
    return '/upstream/' + encodeURIComponent(name) + (item ? '/' + encodeURIComponent(item) : '');
  }

  async function callOnce() {
    const url = path();
    const started = performance.now();
    // The row is taken when the call starts, so calls made in quick succession are listed
    // in the order they were made, whatever order their answers arrive in.
    const call = {url, status: '…', xcache: 'PENDING', age: '', ms: 0};
    calls.push(call);
    render();
    try {
      const resp = await fetch(url, {cache: 'no-store'});
      await resp.text();
      Object.assign(call, {status: resp.status, xcache: resp.headers.get('X-Cache') || 'ERROR',
                           age: resp.headers.get('Age') ?? ''});
    } catch (err) {
      Object.assign(call, {status: 'network error', xcache: 'ERROR'});
    }
    call.ms = performance.now() - started;
    render();
  }

  // Log scale from 0 to the next power of ten above the slowest call: a 1 ms HIT stays
  // visible beside a 300 ms MISS, and the ticks (0, 1, 10, 100 ... ms) say where each is.
  function scaleOf(maxMs) {
    const top = 10 ** Math.max(1, Math.ceil(Math.log10(Math.max(1, maxMs))));
    const at = ms => Math.log10(1 + ms) / Math.log10(1 + top);
    const ticks = [0];
    for (let t = 1; t <= top; t *= 10) ticks.push(t);
    return {top, at, ticks};
  }

  function renderScale(scale) {
    $('scale').replaceChildren(...scale.ticks.map(t => {
      const tick = el('span', '', String(t));
      tick.style.left = (100 * scale.at(t)).toFixed(1) + '%';
      return tick;
    }));
    $('scale').setAttribute('aria-label', `Scale of the bars: 0 to ${scale.top} ms, logarithmic, ` +
                            `ticks at ${scale.ticks.join(', ')} ms`);
  }

  function render() {
    const done = calls.filter(c => c.xcache !== 'PENDING');
    const scale = scaleOf(Math.max(1, ...done.map(c => c.ms)));
    $('chart').replaceChildren(...calls.map((c, i) => {
      const li = el('li');
      li.dataset.xcache = c.xcache;
      const bar = el('div', 'bar ' + c.xcache);
      bar.style.width = (100 * scale.at(c.ms)).toFixed(1) + '%';
      bar.setAttribute('role', 'img');
      bar.setAttribute('aria-label', c.xcache === 'PENDING' ? 'waiting for the answer'
        : `${c.xcache} in ${c.ms.toFixed(1)} ms`);
      li.append(el('span', 'n', String(i + 1)), bar,
                el('span', 'ms', c.xcache === 'PENDING' ? '…' : c.ms.toFixed(1) + ' ms'));
      return li;
    }));
    renderScale(scale);
    $('scale-row').hidden = calls.length === 0;
    $('no-calls').hidden = calls.length > 0;
    $('calls').replaceChildren(...calls.map((c, i) => {
      const tr = el('tr');
      const xc = el('td');
      xc.append(el('span', 'tag ' + c.xcache, c.xcache));
      tr.append(el('td', 'num', String(i + 1)), el('td', 'path', c.url),
                el('td', 'status', String(c.status)), xc, el('td', 'num age', String(c.age)),
                el('td', 'num', c.xcache === 'PENDING' ? '…' : c.ms.toFixed(1)));
      return tr;
    }));
    const hits = calls.filter(c => c.xcache === 'HIT').map(c => c.ms).sort((a, b) => a - b);
    const misses = calls.filter(c => c.xcache === 'MISS').map(c => c.ms).sort((a, b) => a - b);
    const median = xs => xs.length ? xs[Math.floor(xs.length / 2)].toFixed(1) + ' ms' : '—';
    Pulse.setStatus($('status'), calls.length
      ? `${calls.length} call(s); median HIT ${median(hits)}, median MISS ${median(misses)}`
      : 'No calls yet.');
  }

  async function callMany(n) {
    for (let i = 0; i < n; i++) await callOnce();  // one after another: the first warms the cache
  }

  $('call-form').addEventListener('submit', e => { e.preventDefault(); callOnce(); });
  $('call5').addEventListener('click', () => callMany(5));
  $('clear').addEventListener('click', () => { calls.length = 0; render(); });
  const params = new URLSearchParams(location.search);
  if (params.get('name')) $('name').value = params.get('name');
  if (params.get('item')) $('item').value = params.get('item');
})();
