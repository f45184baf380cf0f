'use strict';
// The QR page: make a code (POST /qr) and show it; the recent creations and the codes
// per domain (GET /qr), refreshed every few seconds.  A dynamic code also shows its short
// link, a form to change its target and rules (PATCH), and its scans (GET .../scans).
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
  // The headers of a team route's request: the key when one was given.
  function teamHeaders(extra = {}) {
    const key = storedKey();
    return key ? {...extra, 'x-api-key': key} : extra;
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
    if (f.dynamic.checked) body.dynamic = true;
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
    const encoded = answer.dynamic ? answer.short_url : answer.url;
    $('code').src = answer.image_url;
    $('code').alt = `QR code for ${encoded}`;
    $('encoded').textContent = encoded;
    $('origin').textContent = answer.cached ? 'the cache (made earlier)' : 'made just now';
    $('expires').textContent = answer.dynamic ? 'never (until retired)'
      : new Date(answer.expires_at).toLocaleString();
    if (answer.dynamic) Dynamic.show(answer); else Dynamic.hide();
    $('download').href = `/qr/${answer.id}`;
    $('download').setAttribute('download', `qr-${answer.id}.${answer.format}`);
    $('result').hidden = false;
    Pulse.setStatus($('progress'), answer.cached ? 'The code came from the cache.' : 'The code is ready.');
    setTimeout(() => stats.start(), 1000);  // the creation event reaches the stats within seconds
  });

  // --- a dynamic code: its short link, the edit form, its scans ---
  const DEVICES = {'': 'any device', ios: 'iPhone / iPad', android: 'Android',
                   mobile: 'any phone or tablet', desktop: 'desktop'};
  const DEVICE_NAMES = {ios: 'iOS', android: 'Android', mobile: 'other mobile',
                        desktop: 'desktop', other: 'other'};
  let ruleCount = 0;

  function labelled(id, text, input) {
    const label = Pulse.el('label', '', text);
    label.htmlFor = id;
    input.id = id;
    return [label, input];
  }

  function ruleRow(rule = {}) {
    const n = ++ruleCount;
    const li = Pulse.el('li', 'rule');
    const device = document.createElement('select');
    for (const [value, text] of Object.entries(DEVICES)) {
      const option = Pulse.el('option', '', text);
      option.value = value;
      device.append(option);
    }
    device.value = rule.device || '';
    device.name = 'device';
    const language = document.createElement('input');
    Object.assign(language, {name: 'language', type: 'text', placeholder: 'e.g. fr',
                             value: rule.language || '', autocomplete: 'off'});
    const target = document.createElement('input');
    Object.assign(target, {name: 'target', type: 'url', value: rule.target || '',
                           autocomplete: 'off', placeholder: 'https://…'});
    const remove = Pulse.el('button', 'secondary', 'Remove');
    remove.type = 'button';
    remove.setAttribute('aria-label', `Remove rule ${n}`);
    remove.addEventListener('click', () => li.remove());
    li.append(...labelled(`rule-${n}-device`, 'Device', device),
              ...labelled(`rule-${n}-language`, 'Language', language),
              ...labelled(`rule-${n}-target`, 'Goes to', target), remove);
    return li;
  }

  function describeRules(rules) {
    if (!rules.length) return 'none: every scan goes to the target';
    return rules.map((r, i) => `${i + 1}. ${[r.device && DEVICES[r.device], r.language]
      .filter(Boolean).join(' + ')} → ${r.target}`).join('; ');
  }

  const Dynamic = {
    code: null,
    scans: Pulse.loop(async () => {
      const code = Dynamic.code;
      if (!code) return 0;
      const s = (await Pulse.requestJSON(`/qr/${code}/scans?days=7`, {headers: teamHeaders()})).body;
      if (code !== Dynamic.code) return 0;
      Dynamic.chart(s);
      Pulse.setStatus($('scans-status'), `${s.totals.humans} scans by people, ` +
                      `${s.totals.bots} by bots, unique visitors ≈ ${s.totals.unique_visitors} ` +
                      `in 7 days · refreshes every ${every}s`);
      return every * 1000;
    }, {onFailure(err, delay) {
      Pulse.setStatus($('scans-status'), Pulse.failureText('the scans', err, delay), 'error');
    }}),

    show(answer) {
      Dynamic.code = answer.code;
      $('short-link').href = answer.short_url;
      $('short-link').textContent = answer.short_url;
      Dynamic.state(answer);
      $('new-target').value = answer.target;
      $('rules').replaceChildren(...answer.rules.map(ruleRow));
      $('edit-error').hidden = true;
      Pulse.setStatus($('edit-status'), '');
      $('save').disabled = $('retire').disabled = false;
      $('dynamic-code').hidden = false;
      Dynamic.scans.start();
    },

    hide() {
      Dynamic.code = null;
      Dynamic.scans.stop();
      $('dynamic-code').hidden = true;
    },

    state(answer) {
      $('target-now').textContent = answer.deleted_at ? 'nowhere: retired' : answer.target;
      $('rules-now').textContent = describeRules(answer.rules);
    },

    chart(s) {
      const days = s.days.slice().reverse();  // oldest first
      const max = Math.max(1, ...days.map(d => d.humans + d.bots));
      $('scan-days').replaceChildren(...days.map(d => {
        const li = Pulse.el('li', 'scan-day');
        const date = new Date(d.date + 'T00:00:00Z').toLocaleDateString([], {
          weekday: 'short', day: 'numeric', month: 'short', timeZone: 'UTC'});
        li.append(Pulse.el('span', 'day', date));
        const bars = Pulse.el('span', 'bars');
        for (const [cls, n] of [['humans', d.humans], ['bots', d.bots]]) {
          const bar = Pulse.el('span', `bar ${cls}`);
          bar.style.width = (100 * n / max).toFixed(1) + '%';
          bars.append(bar);
        }
        li.append(bars, Pulse.el('span', 'counts',
                                 `${d.humans} people, ${d.bots} bots, ~${d.unique_visitors} unique`));
        li.dataset.humans = d.humans;
        li.dataset.bots = d.bots;
        return li;
      }));
      const devices = Object.entries(s.totals.devices).filter(([, n]) => n > 0);
      $('devices').replaceChildren(...(devices.length
        ? devices.map(([name, n]) => item(DEVICE_NAMES[name] || name, `× ${n}`))
        : [Pulse.el('li', 'muted', 'No scans by people yet.')]));
    },
  };

  $('add-rule').addEventListener('click', () => {
    const row = ruleRow();
    $('rules').append(row);
    row.querySelector('select').focus();
  });

  function editError(message, field) {
    $('edit-error').textContent = message;
    $('edit-error').dataset.field = field || '';
    $('edit-error').hidden = false;
  }

  $('edit').addEventListener('submit', async event => {
    event.preventDefault();
    const rules = [...$('rules').children].map(li => {
      const get = name => li.querySelector(`[name="${name}"]`).value.trim();
      const rule = {target: get('target')};
      if (get('device')) rule.device = get('device');
      if (get('language')) rule.language = get('language');
      return rule;
    });
    const body = {target: $('new-target').value.trim(), rules};
    $('edit-error').hidden = true;
    $('save').disabled = true;
    try {
      const answer = (await Pulse.requestJSON(`/qr/${Dynamic.code}`, {
        method: 'PATCH', headers: teamHeaders({'Content-Type': 'application/json'}), body: JSON.stringify(body),
      })).body;
      Dynamic.state(answer);
      Pulse.setStatus($('edit-status'), `Saved: scans now go to ${answer.target}.`);
    } catch (err) {
      editError(err instanceof Pulse.HttpError && err.final
        ? (err.body.message || 'The change was refused.') : `Not saved: ${Pulse.describe(err)}.`,
      err.body && err.body.field);
    } finally {
      $('save').disabled = false;
    }
  });

  $('retire').addEventListener('click', async () => {
    try {
      const answer = (await Pulse.requestJSON(`/qr/${Dynamic.code}`, {method: 'DELETE', headers: teamHeaders()})).body;
      Dynamic.state(answer);
      $('save').disabled = $('retire').disabled = true;
      Pulse.setStatus($('edit-status'), 'Retired: the short link now answers “gone”.');
    } catch (err) {
      editError(`Not retired: ${Pulse.describe(err)}.`);
    }
  });

  $('retry').addEventListener('click', () => stats.start());
  stats.start();
})();
