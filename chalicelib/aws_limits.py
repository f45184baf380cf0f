"""botocore event hooks that keep a request-path AWS client within the request's budget.

Imported by chalicelib.clients when it makes a request-path client (botocore is
loaded by then).  botocore does the work (standard retry mode: its retry
conditions, backoff and retry quota); these hooks only add what it has no
setting for:

- `before-send` (every attempt): within a request's budget (chalicelib.budget),
  an attempt that could not get its answer before the budget ends is not sent:
  `AwsBudgetExceeded`, which botocore does not retry;
- `needs-retry`, ahead of botocore's own handler: no retry when its backoff and
  another attempt would not fit in what is left, so the caller gets the real
  error (a ReadTimeoutError, say) at once instead of after a sleep;
- no `Expect: 100-continue`: botocore sends it for every S3 upload and then waits
  a fixed second for the "100 Continue" before sending the body, which a hung
  server never sends (an attempt would take 1 s + the read timeout).  Our uploads
  are QR images of a few KB: the handshake saves nothing;
- `after-call-error`: the failed call's service and operation are recorded on
  the exception, so the 503 can name them (chalicelib.errors.dependency_of).
"""
from __future__ import annotations

from botocore.exceptions import BotoCoreError
from botocore.retries.standard import RetryEventAdapter, ThrottlingErrorDetector

from chalicelib.budget import current

# botocore's standard mode sleeps rand(0, 1) x base x 2 ** (attempt - 1) before a
# retry, base 1 s after throttling and 50 ms otherwise (25 ms for DynamoDB):
# botocore.retries.standard.ExponentialBackoff.  The longest sleep is what must fit.
THROTTLED_BACKOFF_BASE = 1.0
OTHER_BACKOFF_BASE = 0.05


class AwsBudgetExceeded(BotoCoreError):
    """An attempt not started: the request's AWS budget could not wait for it."""

    fmt = ("{operation} not sent: {remaining:.2f}s left of the request's AWS budget, "
           "an attempt may take {attempt:.2f}s")


def aws_call(exc: BaseException) -> str | None:
    """'dynamodb GetItem': the call an exception came from, when a hooked client raised it."""
    return getattr(exc, "pulse_aws_call", None)


class RequestLimits:
    """The hooks of one request-path client.  `attempt_seconds`: the longest an
    attempt waits for a silent server (the client's read timeout)."""

    def __init__(self, attempt_seconds: float):
        self.attempt_seconds = attempt_seconds
        self._throttling = ThrottlingErrorDetector(RetryEventAdapter())

    def install(self, client) -> None:
        events = client.meta.events
        service = client.meta.service_model.service_id.hyphenize()
        events.register(f"before-send.{service}", self.before_send)
        # First: botocore takes the first answer that is not None, so a False here
        # means "no retry" whatever its own handler (registered when the client was
        # made, on the same event, and still run) would have asked for.
        events.register_first(f"needs-retry.{service}", self.needs_retry)
        events.register(f"after-call-error.{service}", self.name_the_call)

    def before_send(self, request, event_name: str, **_):
        request.headers.pop("Expect", None)
        budget = current()
        if budget is None:  # background work: botocore's limits only
            return None
        left = budget.remaining()
        if left < self.attempt_seconds:
            raise AwsBudgetExceeded(operation=_call(event_name), remaining=max(left, 0.0),
                                    attempt=self.attempt_seconds)
        return None

    def needs_retry(self, **kwargs):
        budget = current()
        if budget is None:
            return None
        base = (THROTTLED_BACKOFF_BASE if self._throttling.is_throttling_error(**kwargs)
                else OTHER_BACKOFF_BASE)
        longest_sleep = base * 2 ** (kwargs["attempts"] - 1)
        if budget.remaining() < longest_sleep + self.attempt_seconds:
            return False  # "no retry" (None would leave the decision to botocore)
        return None  # botocore's standard handler decides

    @staticmethod
    def name_the_call(exception: BaseException, event_name: str, **_) -> None:
        exception.pulse_aws_call = _call(event_name)


def _call(event_name: str) -> str:
    """'before-send.dynamodb.GetItem' -> 'dynamodb GetItem'."""
    return " ".join(event_name.split(".")[1:3])
