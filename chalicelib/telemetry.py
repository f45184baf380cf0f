"""Structured logs and CloudWatch metrics of every invocation.

Logs: every line of the `pulse` loggers is one JSON object (`JsonLines`), carrying the
invocation's request id, function name, cold start flag and route; each invocation
ends with one `invocation` line with its status and latency.

Metrics: features call `count(...)` / `record(...)` on their code paths; the values are
kept for the invocation and written when it ends, in CloudWatch Embedded Metric Format
(EMF): one JSON line per dimension set on stdout, which Lambda ships to CloudWatch Logs
and CloudWatch turns into metrics (no PutMetricData call).  Powertools for AWS Lambda's
EMF provider builds the lines; it is imported when the first invocation with a metric
ends (that invocation pays its import, see BENCHMARKS.md), never at `import app`.

Namespace `Pulse`; dimensions `Stage` and `Feature`, plus at most one small extra
(`Dependency`, `RouteClass`).  Page ids, hashtags, QR ids and upstream items are never
dimensions.  A metric recorded outside an invocation (the CLI, a unit test calling a
feature directly) is dropped: the CLI's stdout stays its own.
"""
from __future__ import annotations

import contextvars
import json
import logging
import sys
import threading
import time
from typing import Any

NAMESPACE = "Pulse"
COUNT, MILLISECONDS, SECONDS = "Count", "Milliseconds", "Seconds"

log = logging.getLogger("pulse.telemetry")


class Invocation:
    """What one Lambda invocation (an HTTP request or an event batch) has seen so far.
    (A plain class, not a dataclass: its code is generated at import, on every cold start.)"""

    __slots__ = ("request_id", "function", "cold_start", "route", "started", "metrics")

    def __init__(self, request_id: str, function: str, cold_start: bool, route: str):
        self.request_id, self.function = request_id, function
        self.cold_start, self.route = cold_start, route
        self.started = time.perf_counter()
        # (dimension items) -> metric name -> (unit, values); counts keep one summed value
        self.metrics: dict[tuple, dict[str, tuple[str, list[float]]]] = {}

    def context_fields(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "function": self.function,
                "cold_start": self.cold_start, "route": self.route}


_current: contextvars.ContextVar[Invocation | None] = contextvars.ContextVar(
    "pulse_invocation", default=None)
_cold = True  # the first invocation of this process (container) is its cold start
_cold_lock = threading.Lock()
_write_lock = threading.Lock()


def current() -> Invocation | None:
    return _current.get()


# --- metrics ----------------------------------------------------------------------------

def _add(feature: str, name: str, value: float, unit: str, summed: bool,
         dims: dict[str, str]) -> None:
    inv = _current.get()
    if inv is None:
        return
    key = (("Feature", feature), *sorted(dims.items()))
    metrics = inv.metrics.setdefault(key, {})
    _, values = metrics.setdefault(name, (unit, []))
    if summed and values:
        values[0] += value
    else:
        values.append(float(value))


def count(feature: str, name: str, n: float = 1, **dims: str) -> None:
    """Add `n` to a Count metric of this invocation (summed: one value per invocation)."""
    if n:
        _add(feature, name, n, COUNT, True, dims)


def record(feature: str, name: str, value: float, unit: str = MILLISECONDS,
           **dims: str) -> None:
    """Record one observation (a latency, an age, a level): each value is kept."""
    _add(feature, name, value, unit, False, dims)


def route_class() -> str:
    """The first segment of the current request's route ("qr" for "GET /qr/{qr_id}"): a
    dimension with as few values as the app has route families."""
    inv = _current.get()
    if inv is None:
        return "none"
    path = inv.route.partition(" ")[2]
    return path.strip("/").split("/")[0] or "root"


def count_unavailable(dependency: str | None) -> None:
    """A 503 because a dependency (redis, memcached, aws) failed: `DependencyUnavailable`,
    Feature the request's route class."""
    count(route_class(), "DependencyUnavailable", Dependency=dependency or "unknown")


def count_rate_limited(route_class: str) -> None:
    """A 429 of the rate limiter: `RateLimited` with the route class as its dimension."""
    count("limits", "RateLimited", RouteClass=route_class)


def _stage() -> str:
    try:
        from chalicelib.settings import get_settings

        return get_settings().stage
    except Exception:  # a bad setting already fails the request; the metrics still go out
        return "unknown"


_local = threading.local()


def _provider():
    """This thread's EMF provider (building one costs more than using it: kept)."""
    provider = getattr(_local, "provider", None)
    if provider is None:
        from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
            AmazonCloudWatchEMFProvider,
        )

        provider = _local.provider = AmazonCloudWatchEMFProvider(namespace=NAMESPACE)
    return provider


def emf_lines(inv: Invocation, stage: str) -> list[str]:
    """The invocation's metrics as EMF JSON lines, one per dimension set."""
    if not inv.metrics:
        return []
    provider = _provider()
    lines = []
    for dims, metrics in inv.metrics.items():
        provider.clear_metrics()
        provider.add_dimension("Stage", stage)
        for name, value in dims:
            provider.add_dimension(name, value)
        for metric, (unit, values) in metrics.items():
            # EMF takes 100 values a metric and line; at 100 the provider prints by itself
            for value in values[:99]:
                provider.add_metric(metric, unit, value)
        provider.add_metadata("request_id", inv.request_id)
        provider.add_metadata("function", inv.function)
        lines.append(json.dumps(provider.serialize_metric_set(), separators=(",", ":")))
    return lines


def _write(lines: list[str]) -> None:
    if lines:
        with _write_lock:
            sys.stdout.write("".join(line + "\n" for line in lines))
            sys.stdout.flush()


# --- the invocation hook -----------------------------------------------------------------

def _route_of(event) -> tuple[str, str, Any]:
    """(route, kind, Lambda context): route "GET /qr/{qr_id}" for a request, the event's
    kind (schedule, sqs, kinesis, ...) for an event handler."""
    if event is None or hasattr(event, "lambda_context"):  # chalice.app.Request
        context = getattr(event, "context", None) or {}
        return (f"{getattr(event, 'method', '?')} {context.get('resourcePath', '?')}", "http",
                getattr(event, "lambda_context", None))
    kind = type(event).__name__.removesuffix("Event").lower() or "event"
    return {"cloudwatch": "schedule"}.get(kind, kind), kind, getattr(event, "context", None)


def middleware(event, get_response):
    """Chalice middleware for every handler (registered for "all"): the invocation's
    context for log lines and metrics, its `invocation` log line, its EMF lines."""
    global _cold
    route, kind, lambda_context = _route_of(event)
    with _cold_lock:
        cold, _cold = _cold, False
    inv = Invocation(request_id=getattr(lambda_context, "aws_request_id", "") or "",
                     function=getattr(lambda_context, "function_name", "") or "",
                     cold_start=cold, route=route)
    token = _current.set(inv)
    status: int | str = "error"
    try:
        response = get_response(event)
        status = getattr(response, "status_code", "ok") if kind == "http" else "ok"
        return response
    finally:
        fields = {"status": status,
                  "latency_ms": round((time.perf_counter() - inv.started) * 1000, 2)}
        if kind == "http" and event is not None:
            api_id = (event.context or {}).get("requestId")
            if api_id:
                fields["api_request_id"] = api_id
        failed = status == "error" or (isinstance(status, int) and status >= 500)
        try:
            log.log(logging.WARNING if failed else logging.INFO, "invocation",
                    extra={"fields": fields})
            _write(emf_lines(inv, _stage()))
        except Exception:  # the answer stands without its metrics
            log.exception("writing the invocation's metrics failed")
        finally:
            _current.reset(token)


# --- JSON log lines ----------------------------------------------------------------------

class JsonLines(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the invocation's context
    (when inside one) and the record's `extra={"fields": {...}}`; a traceback is a field."""

    def format(self, record: logging.LogRecord) -> str:
        from chalicelib.timestamps import iso_z

        line: dict[str, Any] = {"time": iso_z(record.created), "level": record.levelname,
                                "logger": record.name, "message": record.getMessage()}
        inv = _current.get()
        if inv is not None:
            line.update(inv.context_fields())
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


def use_json_lines(logger: logging.Logger) -> None:
    """Give each handler of `logger` the JSON formatter."""
    for handler in logger.handlers:
        handler.setFormatter(JsonLines())
