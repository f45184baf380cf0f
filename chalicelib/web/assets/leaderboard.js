'use strict';
// The leaderboard page: one window (a tab) at a time, refreshed every few seconds with
// ETag revalidation; a tag's per-hour chart on a click.  Only the answer for the window
// on screen is drawn: a late answer for a tab left since is dropped.
(() => {
  const $ = id => document.getElementById(id);
  const el = Pulse.el;
  const params = new URLSearchParams(location.search);
  const refreshSeconds = Math.max(1, Number(params.get('refresh')) || 15);
  let windowName = params.get('window') || 'all';
  let order = params.get('order') === 'rising' ? 'rising' : 'top';
  let board = params.get('board') || '';
  let shownTag = null;
  let shownUrl = null;  // the request whose answer the chart shows
  const etags = new Map();  // url -> [ETag, body]: a refresh that changes nothing is a 304
  const tabs = Array.from(document.querySelectorAll('[role=tab]'));
  const status = $('status');

  function query(extra) {
    const q = new URLSearchParams(extra);
    if (board) q.set('board', board);
    return q.toString();
  }

  function currentUrl() {
    return order === 'rising'
      ? `/leaderboard?${query({order: 'rising', window: '1h', n: 10})}`
      : `/leaderboard?${query({window: windowName, n: 10})}`;
  }

  // JSON, revalidated with the ETag of the last answer: a 304 reuses its body
  async function getJSON(url) {
    const known = etags.get(url);
    const answer = await Pulse.requestJSON(url, {headers: known ? {'If-None-Match': known[0]} : {}});
    if (answer.status === 304 && known) return {data: known[1], fresh: false};
    const etag = answer.headers.get('ETag');
    if (etag) etags.set(url, [etag, answer.body]);
    return {data: answer.body, fresh: true};
  }

  function render(data) {
    const chart = $('chart');
    const rising = data.order === 'rising';
    chart.classList.toggle('rising', rising);
    $('chart-axis').textContent = rising
      ? 'Bar length: how far the tag is above its expected count for the last hour ' +
        '(from its 24 h rate), relative to the first. Number: tweets in the last hour.'
      : 'Bar length: tweets with the tag in this window, relative to the first.';
    const measure = item => rising ? Math.max(0, item.rising) : item.score;
    const max = Math.max(1e-9, ...data.items.map(measure));
    chart.replaceChildren(...data.items.map(item => {
      const li = el('li');
      li.dataset.hashtag = item.hashtag;
      li.setAttribute('aria-current', String(item.hashtag === shownTag));
      const tag = el('button', 'tag', '#' + item.hashtag);
      tag.type = 'button';
      tag.title = `#${item.hashtag}: per hour, last 24 h`;
      const bar = el('div', 'bar');
      bar.style.width = (100 * measure(item) / max).toFixed(1) + '%';
      bar.setAttribute('role', 'img');
      const lift = rising ? `↑${item.rising.toFixed(1)}` : '';
      bar.setAttribute('aria-label', `#${item.hashtag}: ${item.score}` +
                       (lift ? `, expected ${item.expected}` : ''));
      li.append(el('span', 'rank', item.rank), tag, bar,
                el('span', 'score', item.score.toLocaleString('en-US')), el('span', 'lift', lift));
      li.addEventListener('click', () => showHourly(item.hashtag));
      return li;
    }));
    $('empty').hidden = data.items.length > 0;
    $('note').hidden = !(data.sources && data.sources.synthetic > 0);
    const picker = $('board');
    if (picker.options.length !== data.boards.length) {
      picker.replaceChildren(...data.boards.map(name => el('option', '', name)));
    }
    picker.value = data.board;
    $('boards').hidden = data.boards.length < 2;
    const updated = data.updated_at ? new Date(data.updated_at).toLocaleTimeString() : 'never';
    const what = rising
      ? `rising in the last hour (${data.candidates} top tags scored against their 24 h rate)`
      : `${data.total} hashtags in this window`;
    Pulse.setStatus(status, `${what} · counts updated ${updated} · refreshes every ${refreshSeconds}s`);
  }

  async function showHourly(tag) {
    shownTag = tag;
    document.querySelectorAll('#chart li').forEach(li =>
      li.setAttribute('aria-current', String(li.dataset.hashtag === tag)));
    const title = $('hourly-title');
    try {
      const {data} = await getJSON(`/leaderboard/${encodeURIComponent(tag)}?` +
                                   query({window: '24h', neighbours: 0}));
      if (shownTag !== tag) return;
      const max = Math.max(1, ...data.hourly.map(h => h.count));
      const hours = $('hours');
      hours.replaceChildren(...data.hourly.map((h, i) => {
        const bar = el('div', i === data.hourly.length - 1 ? 'hour now' : 'hour');
        bar.style.height = (100 * h.count / max).toFixed(1) + '%';
        bar.dataset.count = h.count;
        const at = new Date(h.hour).toLocaleTimeString([], {hour: '2-digit', minute: '2-digit'});
        bar.title = `${at}: ${h.count}`;
        return bar;
      }));
      hours.setAttribute('aria-label', `#${data.hashtag} per hour over the last 24 hours, ` +
                         `at most ${max} in an hour`);
      title.textContent = `#${data.hashtag} per hour, last 24 h`;
      $('hourly-axis').textContent = `Bar height: tweets with #${data.hashtag} in each hour ` +
        `(the tallest: ${max}); left to right: the last 24 hours, the current one last.`;
    } catch (err) {
      if (shownTag !== tag) return;
      title.textContent = err instanceof Pulse.HttpError && err.status === 404
        ? `#${tag}: no count in the last 24 hours`
        : `#${tag}: could not load the hours (${Pulse.describe(err)})`;
      $('hourly-axis').textContent = '';
      $('hours').replaceChildren();
      $('hours').setAttribute('aria-label', title.textContent);
    }
    $('hourly').hidden = false;
  }

  async function load(isCurrent) {
    const url = currentUrl();
    const {data, fresh} = await getJSON(url);
    if (!isCurrent() || url !== currentUrl()) return;  // an answer for a tab left since
    $('retry').hidden = true;
    // a 304 keeps the chart when it already shows this answer; after a tab switch it does not
    if (fresh || url !== shownUrl) render(data);
    shownUrl = url;
    if (shownTag) showHourly(shownTag);
  }

  const refresher = Pulse.loop(load, {
    every: refreshSeconds * 1000,
    onFailure(err, delay) {
      Pulse.setStatus(status, Pulse.failureText('the leaderboard', err, delay), 'error');
      $('retry').hidden = delay === null;
      if (delay === null) {  // the request itself is wrong: nothing to show for it
        $('chart').replaceChildren();
        $('empty').hidden = true;
        shownUrl = null;
      }
    },
  });

  function remember() {
    const q = new URLSearchParams();
    if (board) q.set('board', board);
    if (order === 'rising') q.set('order', 'rising'); else q.set('window', windowName);
    if (params.get('refresh')) q.set('refresh', refreshSeconds);
    history.replaceState(null, '', '?' + q.toString());
  }

  function isSelected(tab) {
    return order === 'rising' ? tab.dataset.order === 'rising'
      : !tab.dataset.order && tab.dataset.window === windowName;
  }

  function selectTab() {
    const selected = tabs.find(isSelected);
    tabs.forEach(tab => {
      tab.setAttribute('aria-selected', String(tab === selected));
      // one tab stop for the list: the selected tab (the first when none is)
      tab.tabIndex = tab === (selected || tabs[0]) ? 0 : -1;
    });
    $('board-panel').setAttribute('aria-labelledby', (selected || tabs[0]).id);
  }

  function activate(tab) {
    order = tab.dataset.order || 'top';
    windowName = tab.dataset.window;
    selectTab();
    remember();
    Pulse.setStatus(status, 'Loading…');
    $('retry').hidden = true;
    refresher.start();
  }

  tabs.forEach((tab, i) => {
    tab.addEventListener('click', () => activate(tab));
    tab.addEventListener('keydown', event => {
      const to = {ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1}[event.key];
      if (to === undefined) return;
      event.preventDefault();
      const next = tabs[(to + tabs.length) % tabs.length];
      next.focus();
      activate(next);
    });
  });
  $('board').addEventListener('change', event => {
    board = event.target.value;
    $('hourly').hidden = true;
    shownTag = null;
    remember();
    refresher.start();
  });
  $('retry').addEventListener('click', () => {
    Pulse.setStatus(status, 'Loading…');
    refresher.start();
  });
  selectTab();
  refresher.start();
})();
