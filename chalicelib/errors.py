"""Errors that reach the HTTP caller as JSON with the right status code."""
from __future__ import annotations

import sys


class PulseError(Exception):
    status_code = 500
    code = "InternalError"

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.message = message
        self.details = details

    def to_body(self) -> dict:
        return {"error": self.code, "message": self.message, **self.details}


class InvalidInput(PulseError):
    """The caller sent something we cannot accept: say what and where."""

    status_code = 400
    code = "BadRequest"


class NotFound(PulseError):
    status_code = 404
    code = "NotFound"


class DependencyUnavailable(PulseError):
    """A backing service (Redis, memcached, AWS) failed or timed out."""

    status_code = 503
    code = "ServiceUnavailable"


class UpstreamFailed(PulseError):
    """An upstream API behind the read-through cache failed, and no stale copy was kept."""

    status_code = 502
    code = "BadGateway"


class UpstreamTimeout(PulseError):
    """An upstream API did not answer within its deadline, and no stale copy was kept."""

    status_code = 504
    code = "GatewayTimeout"


def is_dependency_failure(exc: BaseException) -> bool:
    """True for network/timeout errors of Redis, memcached and botocore.

    Looks only at libraries already imported, so the check itself never
    pulls a client library into a cold start.
    """
    kinds: list[type] = [ConnectionError, TimeoutError]
    if "redis" in sys.modules:
        from redis import exceptions as r

        # OutOfMemoryError: MemoryDB runs with noeviction, so a full node refuses
        # writes; that is the service being unavailable, not a bug of the caller.
        kinds += [r.ConnectionError, r.TimeoutError, r.BusyLoadingError, r.ClusterDownError,
                  r.ReadOnlyError, r.MaxConnectionsError, r.OutOfMemoryError]
    if "pymemcache" in sys.modules:
        from pymemcache import exceptions as m

        kinds += [m.MemcacheUnexpectedCloseError, m.MemcacheServerError]
    if "botocore" in sys.modules:
        from botocore import exceptions as b

        # No credentials is the AWS side not answering for us (an expired role session,
        # a missing profile locally): the request itself is fine.
        kinds += [b.EndpointConnectionError, b.ConnectTimeoutError, b.ReadTimeoutError,
                  b.ConnectionClosedError, b.NoCredentialsError, b.PartialCredentialsError]
        if isinstance(exc, b.ClientError) and aws_error_is_transient(exc):
            return True
    if "chalicelib.aws_limits" in sys.modules:
        from chalicelib.aws_limits import AwsBudgetExceeded

        kinds.append(AwsBudgetExceeded)
    return isinstance(exc, tuple(kinds))


# Error codes AWS answers when it sheds load; botocore's standard mode retries them, so
# one that reaches us has outlived its retries.
AWS_THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
    "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
    "EC2ThrottledException",
})


def aws_error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError ("" for anything else)."""
    response = getattr(exc, "response", None)
    return (response or {}).get("Error", {}).get("Code", "") if isinstance(response, dict) else ""


def aws_error_is_transient(exc: BaseException) -> bool:
    """A ClientError that says "not now" (throttled, or a 5xx of the service), as opposed
    to one that says the request or our configuration is wrong (AccessDenied, a missing
    table), which retrying will not mend."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return aws_error_code(exc) in AWS_THROTTLING_CODES or status >= 500


def aws_call_of(exc: BaseException) -> str | None:
    """The AWS call an error came from: "dynamodb GetItem" when a request-path client's
    hook named it (chalicelib.aws_limits), else a ClientError's operation name."""
    return getattr(exc, "pulse_aws_call", None) or getattr(exc, "operation_name", None)


def dependency_of(exc: BaseException) -> str | None:
    """The failing dependency as /health names it (redis, memcached, aws), or None."""
    if "botocore" in sys.modules:
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, BotoCoreError | ClientError):
            return "aws"
    if "redis" in sys.modules:
        from redis.exceptions import RedisError

        if isinstance(exc, RedisError):
            return "redis"
    if "pymemcache" in sys.modules:
        from pymemcache.exceptions import MemcacheError

        if isinstance(exc, MemcacheError):
            return "memcached"
    return None
