"""The API contract (chalicelib/openapi.py): a valid OpenAPI 3.1 document naming exactly
the app's routes, which the live app keeps: Schemathesis sends every operation generated
requests (valid and invalid) against `chalice local` on the real local stack and checks
each answer: no server error, a documented status code, content type and headers, a body
that fits the documented schema, invalid input refused, a 405 with Allow for a method a
path lacks."""
from __future__ import annotations

import copy
import json
import os
import time
import urllib.request

import pytest
import schemathesis
from hypothesis import HealthCheck, event, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    missing_required_header,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

import app as pulse_app
from chalicelib.hotspots.api import EXAMPLE_PAGE
from chalicelib.leaderboard.api import EXAMPLE_TAG
from chalicelib.qr.api import EXAMPLE_URL
from tests.qr_support import drain_qr_events

DOCUMENT = pulse_app.api_document()
# Every phase: the document's examples, coverage (boundaries, each constraint broken in
# turn, methods a route lacks: the app answers 405 in the one error shape) and fuzzing.  Not
# TRACE and QUERY, which neither API Gateway nor `chalice local` (a 501 of Python's
# http.server, before the app) routes to the app.  Unknown query names are accepted and
# ignored (the document says so: cache busters, trackers, the pages' ?refresh=), so none is
# generated as invalid input.  Failures show the request as sent (no "[Filtered]").
CONFIG = schemathesis.Config.from_dict({
    "output": {"sanitization": {"enabled": False}},
    "generation": {"allow-extra-parameters": False},
    "phases": {"examples": {"enabled": True}, "fuzzing": {"enabled": True},
               "coverage": {"enabled": True,
                            "unexpected-methods": ["GET", "PUT", "POST", "DELETE", "OPTIONS",
                                                   "PATCH"]}}})
# Generated cases per operation (beside the examples and coverage phases); a longer hunt:
# PULSE_CONTRACT_EXAMPLES=500 pytest tests/test_openapi.py
EXAMPLES = int(os.environ.get("PULSE_CONTRACT_EXAMPLES", "30"))
SCHEMA = schemathesis.openapi.from_dict(copy.deepcopy(DOCUMENT), config=CONFIG)


def stated_in_words(response, case) -> bool:
    """A 400 for a rule between fields, which a schema of each field cannot state and the
    document states in words: `order=rising` takes only the rising windows; `fg` and `bg`
    must contrast; a URL must fit a QR code at the chosen error correction; `rules` go with
    `dynamic: true` only."""
    from chalicelib.leaderboard.api import RISING_WINDOWS

    if response.status_code != 400:
        return False
    query = case.query or {}
    if case.operation.path == "/leaderboard" and query.get("order") == "rising":
        return query.get("window") not in (None, "", *RISING_WINDOWS)
    if case.operation.path != "/qr":
        return False
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    message = body.get("message", "")
    return (body.get("field") == "bg" and "contrast" in message) or (
        body.get("field") == "url" and "too long for a QR code" in message) or (
        body.get("field") == "rules" and "dynamic" in message)


def valid_input_is_accepted(ctx, response, case):
    """Schemathesis' positive_data_acceptance, less the rules stated in words."""
    if stated_in_words(response, case):
        return None
    return positive_data_acceptance(ctx, response, case)


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance, unsupported_method,
          negative_data_rejection, valid_input_is_accepted, missing_required_header,
          allow_header_conformance]


def test_the_document_is_valid_openapi_3_1():
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation.validators import OpenAPIV31SpecValidator

    validate(DOCUMENT, cls=OpenAPIV31SpecValidator)
    assert DOCUMENT["openapi"].startswith("3.1")


def test_the_document_names_exactly_the_apps_routes():
    routed = {(method, path) for path, entry in pulse_app.app.routes.items()
              for method in entry}
    documented = {(method.upper(), path) for path, operations in DOCUMENT["paths"].items()
                  for method in operations}
    assert documented == routed
    assert len(routed) >= 15  # the table comes from the app: an empty one fails


def test_the_limits_are_the_routes_own():
    from chalicelib.hotspots.api import MAX_CLICKS
    from chalicelib.leaderboard.api import N_BOUNDS
    from chalicelib.qr.spec import SIZE_RANGE

    params = {p["name"]: p["schema"] for p in DOCUMENT["paths"]["/leaderboard"]["get"]
              ["parameters"]}
    assert (params["n"]["default"], params["n"]["minimum"], params["n"]["maximum"]) == N_BOUNDS
    schemas = DOCUMENT["components"]["schemas"]
    assert schemas["Clicks"]["properties"]["clicks"]["maxItems"] == MAX_CLICKS
    size = schemas["QrRequest"]["properties"]["size"]
    assert (size["minimum"], size["maximum"]) == SIZE_RANGE


def record_tweets(settings_, tags: list[str]) -> None:
    from chalicelib.clients import get_redis
    from chalicelib.leaderboard.model import Tweet
    from chalicelib.leaderboard.store import Leaderboard

    board = Leaderboard(get_redis(), settings_.leaderboard_name)
    now = time.time()
    board.record([Tweet(1 + i, now - 60, (tag,)) for i, tag in enumerate(tags)])


def record_clicks(page: str) -> None:
    from chalicelib.hotspots.wiring import get_store

    now_ms = int(time.time() * 1000)
    get_store().apply(page, "shardId-000000000000",
                      [(str(i + 1), now_ms, 0.5 + i / 1000, 0.5) for i in range(20)])


@pytest.fixture(scope="module")
def contract_world(stack_env, live_server):
    """The live app over one clean, provisioned world shared by every operation (faster
    than a world per operation), seeded with the document's examples so the run reaches
    the 200s too: a counted tag, a code, a clicked page; `demo` is the demo upstream."""
    from chalicelib.clients import reset_clients
    from tests.conftest import clean_world

    with pytest.MonkeyPatch.context() as mp:
        world = clean_world(mp, stack_env)
        record_tweets(world, [EXAMPLE_TAG] * 3 + ["campaign"])
        record_clicks(EXAMPLE_PAGE)
        req = urllib.request.Request(f"{live_server}/qr", method="POST",
                                     data=json.dumps({"url": EXAMPLE_URL}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert json.loads(resp.read())["id"] == DOCUMENT["paths"]["/qr/{qr_id}"]["get"][
                "parameters"][0]["example"]
        yield live_server
        reset_clients()


def test_the_app_serves_the_document(contract_world):
    with urllib.request.urlopen(f"{contract_world}/openapi.json", timeout=10) as resp:
        assert resp.headers["Content-Type"] == "application/json"
        assert json.loads(resp.read()) == DOCUMENT


@SCHEMA.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_the_app_keeps_its_contract(case, contract_world):
    response = case.call(base_url=contract_world, timeout=10)
    event(f"status {response.status_code}")  # --hypothesis-show-statistics: what it reached
    case.validate_response(response, checks=CHECKS)


def test_created_at_is_iso_z_in_post_and_get_qr(app_client, pulse_env):
    import re

    from local.events import EventRunner

    runner = EventRunner(pulse_app.app, settings=pulse_env).setup()
    made = app_client.http.post("/qr", headers={"Content-Type": "application/json"},
                                body=json.dumps({"url": "https://iso.example/"}).encode())
    assert made.status_code == 201
    assert drain_qr_events(runner) == 1
    recent = json.loads(app_client.http.get("/qr").body)["recent"]
    iso_z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
    assert iso_z.fullmatch(json.loads(made.body)["created_at"])
    assert [r["created_at"] for r in recent if iso_z.fullmatch(str(r["created_at"]))] == \
        [r["created_at"] for r in recent] and recent, recent
