'use strict';
// Shared by every page: JSON requests, a loop that refreshes and retries with backoff,
// and status text in live regions.

/** An answer that is not 2xx (nor 304): its status, and the app's JSON error if any. */
class HttpError extends Error {
  constructor(status, body, retryAfter) {
    super((body && body.message) || `the server answered ${status}`);
    this.status = status;
    this.body = body || {};
    this.retryAfter = retryAfter;  // seconds, from a Retry-After header
  }

  /** A 4xx other than 429 is an answer about the request: asking again changes nothing. */
  get final() { return this.status >= 400 && this.status < 500 && this.status !== 429; }
}

const Pulse = {
  HttpError,

  /** An element with a class and text (never innerHTML: the text may be user input). */
  el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  },

  /**
   * fetch() and read the JSON answer: {status, body, headers}.  A 304 has no body; any
   * other non-2xx is thrown as an HttpError, a network failure as the fetch's TypeError.
   */
  async requestJSON(url, options = {}) {
    const resp = await fetch(url, {cache: 'no-store', ...options});
    // read to the end whatever the answer (a 304 too): a body left unread is a request
    // the browser cancels
    const text = await resp.text();
    let body = null;
    if ((resp.headers.get('Content-Type') || '').startsWith('application/json')) {
      try { body = JSON.parse(text); } catch (err) { body = null; }
    }
    if (resp.ok || resp.status === 304) return {status: resp.status, body, headers: resp.headers};
    const retryAfter = Number(resp.headers.get('Retry-After')) || undefined;
    throw new HttpError(resp.status, body, retryAfter);
  },

  /** What went wrong, in words for the page. */
  describe(err) {
    if (err instanceof HttpError) return err.message;
    return 'the service did not answer (network error)';
  },

  /**
   * Run `task` now and then again: `every` ms after a success (or the number of ms the
   * task returns), after a failure that may pass (network, 5xx, 429) with exponential
   * backoff from `base` to `max` ms, and not at all after a final 4xx.  `onFailure(err,
   * delayMs|null)` tells the page.  start() runs it at once (a retry, or new input);
   * answers of a run that start() or stop() superseded are dropped.
   */
  loop(task, {every = 0, base = 1000, max = 30000, onFailure = () => {}} = {}) {
    let timer = null;
    let generation = 0;
    let failures = 0;
    const schedule = (run, ms) => { timer = setTimeout(run, ms); };
    const control = {
      get generation() { return generation; },
      stop() { clearTimeout(timer); timer = null; generation += 1; },
      start() { control.stop(); failures = 0; run(); },
    };
    async function run() {
      const mine = generation;
      try {
        const next = await task(() => mine === generation);
        if (mine !== generation) return;
        failures = 0;
        const ms = typeof next === 'number' ? next : every;
        if (ms > 0) schedule(run, ms);
      } catch (err) {
        if (mine !== generation) return;
        let delay = null;
        if (!(err instanceof HttpError && err.final)) {
          delay = Math.min(max, base * 2 ** failures);
          if (err instanceof HttpError && err.retryAfter) delay = Math.max(delay, err.retryAfter * 1000);
          failures += 1;
          schedule(run, delay);
        }
        onFailure(err, delay);
      }
    }
    return control;
  },

  /** Status text in a live region; `kind` 'error' colours it. */
  setStatus(node, text, kind) {
    node.textContent = text;
    node.classList.toggle('error', kind === 'error');
  },

  /** The words for a failed load: what failed, why, and when it is tried again. */
  failureText(what, err, delay) {
    const why = Pulse.describe(err);
    if (delay === null) return `Could not load ${what}: ${why}.`;
    return `Could not load ${what}: ${why}. Trying again in ${Math.round(delay / 1000)} s.`;
  },
};

window.Pulse = Pulse;
