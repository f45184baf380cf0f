'use strict';
// The QR page: make a code (POST /qr) and show it; the recent creations and the codes
// per domain (GET /qr), refreshed every few seconds.
(() => {
  const $ = id => document.getElementById(id);
  const form = $('form');

  function item(text, extra) {
    const li = Pulse.el('li', '', text);  // text only: URLs are user input
    if (extra) li.append(Pulse.el('span', 'muted', ' ' + extra));
    return li;
  }

  async function refreshStats() {
    const s = (await Pulse.requestJSON('/qr')).body;
    $('recent').replaceChildren(...s.recent.map(c => item(c.domain, `(${c.format})`)));
    $('no-recent').hidden = s.recent.length > 0;
    $('domains').replaceChildren(...s.domains.map(d => item(d.domain, `× ${d.count}`)));
    $('domains-section').hidden = s.domains.length === 0;  // no empty heading before a code
    Pulse.setStatus($('stats-status'), '');
    $('retry').hidden = true;
  }

  const every = Number(new URLSearchParams(location.search).get('refresh')) || 5;
  const stats = Pulse.loop(refreshStats, {
    every: every * 1000,
    onFailure(err, delay) {
      Pulse.setStatus($('stats-status'), Pulse.failureText('the recent creations', err, delay), 'error');
      $('retry').hidden = delay === null;
    },
  });

  // The team's API key, asked for when a stage refuses POST /qr without it (403), kept in
  // sessionStorage only (gone when the tab closes) and sent as x-api-key.
  const KEY_ITEM = 'pulse.teamApiKey';
  function storedKey() {
    try { return sessionStorage.getItem(KEY_ITEM) || ''; } catch (err) { return ''; }
  }
  function storeKey(key) {
    try {
      if (key) sessionStorage.setItem(KEY_ITEM, key); else sessionStorage.removeItem(KEY_ITEM);
    } catch (err) { /* storage off: the key lives in the field only */ }
  }
  if (storedKey()) {
    form.elements.api_key.value = storedKey();
    $('key-box').hidden = false;
  }

  function showError(message, field) {
    $('error').textContent = message;
    $('error').dataset.field = field || '';
    $('error').hidden = false;
    for (const input of form.elements) input.removeAttribute('aria-invalid');
    const input = field && form.elements[field];
    if (input && input.focus) {
      input.setAttribute('aria-invalid', 'true');
      input.setAttribute('aria-describedby', 'error');
      input.focus();
    }
  }

  form.addEventListener('submit', async event => {
    event.preventDefault();
    const f = form.elements;
    const body = {url: f.url.value.trim(), format: f.format.value, size: Number(f.size.value),
                  border: Number(f.border.value), error_correction: f.error_correction.value,
                  fg: f.fg.value, bg: f.bg.value};
    const key = f.api_key.value.trim();
    storeKey(key);
    const headers = {'Content-Type': 'application/json'};
    if (key) headers['x-api-key'] = key;
    $('error').hidden = true;
    $('make').disabled = true;
    Pulse.setStatus($('progress'), 'Making the code…');
    let answer;
    try {
      answer = (await Pulse.requestJSON('/qr', {
        method: 'POST', headers, body: JSON.stringify(body),
      })).body;
    } catch (err) {
      Pulse.setStatus($('progress'), '');
      if (err instanceof Pulse.HttpError && err.status === 403) {
        $('key-box').hidden = false;
        showError(key ? 'The API key was refused: check it and try again.'
                      : "This stage makes codes for the campaign team only: enter the team's API key.",
                  'api_key');
        $('result').hidden = true;
      } else if (err instanceof Pulse.HttpError && err.final) {
        showError(err.body.message || 'The code could not be made.', err.body.field);
        $('result').hidden = true;
      } else {
        showError(`The code could not be made: ${Pulse.describe(err)}. Try again.`);
      }
      return;
    } finally {
      $('make').disabled = false;
    }
    for (const input of form.elements) input.removeAttribute('aria-invalid');
    $('code').src = answer.image_url;
    $('code').alt = `QR code for ${answer.url}`;
    $('encoded').textContent = answer.url;
    $('origin').textContent = answer.cached ? 'the cache (made earlier)' : 'made just now';
    $('expires').textContent = new Date(answer.expires_at).toLocaleString();
    $('download').href = `/qr/${answer.id}`;
    $('download').setAttribute('download', `qr-${answer.id}.${answer.format}`);
    $('result').hidden = false;
    Pulse.setStatus($('progress'), answer.cached ? 'The code came from the cache.' : 'The code is ready.');
    setTimeout(() => stats.start(), 1000);  // the creation event reaches the stats within seconds
  });

  $('retry').addEventListener('click', () => stats.start());
  stats.start();
})();
