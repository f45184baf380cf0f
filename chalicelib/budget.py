"""The time one request may spend on AWS calls, shared by all of them.

Per-call limits alone do not bound a request that makes several calls in sequence
(POST /qr: GetItem, PutObject, PutItem, PutEvents): a call that succeeds late leaves
the next one its full allowance.  `json_api` opens an `aws_budget` around every JSON
route; the request-path AWS clients (hooks in chalicelib.aws_limits) refuse to start an
attempt that the rest of the budget could not wait for, and botocore's retries stop
when another attempt would not fit.

The budget is counted from the request's first AWS call, not from the request's
start: creating clients on a cold start (~0.5 s with the boto3 import) must not
make a healthy request fail.  Stdlib only: `import app` stays light.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class Budget:
    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.seconds = seconds
        self._clock = clock
        self._ends: float | None = None

    def remaining(self) -> float:
        """Seconds left; the first call starts the clock."""
        now = self._clock()
        if self._ends is None:
            self._ends = now + self.seconds
        return self._ends - now


_current: ContextVar[Budget | None] = ContextVar("pulse_aws_budget", default=None)


def current() -> Budget | None:
    """The budget of the request being served, or None (background work: no budget)."""
    return _current.get()


@contextmanager
def aws_budget(seconds: float) -> Iterator[Budget]:
    budget = Budget(seconds)
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)
