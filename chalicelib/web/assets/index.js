'use strict';
// The index: the state of each dependency from GET /health (a 503 lists the failing ones).
(() => {
  const health = document.getElementById('health');

  function show(body) {
    const deps = Object.entries((body && body.dependencies) || {});
    if (!deps.length) {
      Pulse.setStatus(health, `Overall: ${(body && body.status) || 'unknown'}`);
      return;
    }
    health.replaceChildren();
    deps.forEach(([name, dep], i) => {
      if (i) health.append(' · ');
      health.append(Pulse.el('span', dep.status === 'ok' ? 'ok' : 'bad', `${name}: ${dep.status}`));
    });
  }

  async function check() {
    try {
      show((await Pulse.requestJSON('/health')).body);
    } catch (err) {
      // 503: some dependency is failing, and the answer says which
      if (err instanceof Pulse.HttpError && err.status === 503 && err.body.dependencies) {
        show(err.body);
        return;
      }
      throw err;
    }
  }

  Pulse.loop(check, {
    onFailure: (err, delay) => Pulse.setStatus(health, Pulse.failureText('the health check', err, delay), 'error'),
  }).start();
})();
