"""Fault injection for the tests and benches: hang a server at a chosen AWS call."""
from __future__ import annotations

import threading


def pause_before(server, client, operation: str, resume_after: float | None = None) -> str:
    """Pause `server` (processes.Server: it keeps its port, answers nothing) when `client`
    is about to send `operation` (its first attempt only: a retry must not start another
    timer), and resume it `resume_after` seconds later when given.  Returns the hook's
    event name, its unique_id too, for `client.meta.events.unregister(name, unique_id=name)`."""
    fired = []

    def pause(**_):
        if not fired:
            fired.append(True)
            server.pause()
            if resume_after is not None:
                threading.Timer(resume_after, server.resume).start()

    name = f"before-send.{client.meta.service_model.service_id.hyphenize()}.{operation}"
    client.meta.events.register(name, pause, unique_id=name)
    return name
