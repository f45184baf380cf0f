"""A hung AWS (moto's server paused: it keeps its port, answers nothing) gives each
route's degraded answer within 2 s, and nothing accepted before the hang is lost.

The app is warm (its clients exist) before each hang, as in a Lambda container
that has served before.  Each route once took 4.1 s per hung call (4 attempts x
1 s); bench/aws_hang.py measures every case."""
from __future__ import annotations

import json
import time

import pytest

from chalicelib.clients import get_aws_client, get_memcached
from local import faults
from tests.qr_support import JSON, decode_png

ANY = {"Accept": "*/*"}


def timed_while_hung(moto, call, *, pause_now: bool = True):
    """(answer, seconds) of `call` with moto paused: now, or by pause_before's hooks
    when they fire; moto is resumed after, whatever happened."""
    if pause_now:
        moto.pause()
    try:
        started = time.perf_counter()
        resp = call()
        return resp, time.perf_counter() - started
    finally:
        moto.resume()


def post(client, url: str):
    return client.http.post("/qr", headers=JSON, body=json.dumps({"url": url}))


def created(client, url: str) -> str:
    resp = post(client, url)
    assert resp.status_code == 201, resp.body
    return json.loads(resp.body)["id"]


def assert_names_aws(resp, call: str) -> None:
    body = json.loads(resp.body)
    assert resp.status_code == 503, body
    assert (body["error"], body["dependency"]) == ("ServiceUnavailable", "aws"), body
    assert call in body["message"], body


def pause_before(moto, service: str, operation: str, resume_after: float | None = None):
    """Pause moto when the app's `service` client is about to send `operation`."""
    faults.pause_before(moto, get_aws_client(service), operation, resume_after)


def test_health_names_aws_within_two_seconds_and_recovers(app_client, own_moto):
    assert app_client.http.get("/health").status_code == 200
    resp, elapsed = timed_while_hung(own_moto,
                                     lambda: app_client.http.get("/health/details"))
    body = json.loads(resp.body)
    assert elapsed < 2.0
    assert resp.status_code == 503 and body["failing"] == ["aws"], body
    # The check gave up by itself (its client's limits), within the page's deadline:
    # the thread is not held while the deadline's "timeout" is answered for it.
    assert body["dependencies"]["aws"]["status"] == "error", body
    assert "ReadTimeoutError" in body["dependencies"]["aws"]["detail"]
    assert app_client.http.get("/health").status_code == 200


def test_post_qr_is_a_503_naming_aws_within_two_seconds_then_succeeds(app_client, own_moto):
    before = created(app_client, "https://example.com/made-before")
    resp, elapsed = timed_while_hung(own_moto,
                                     lambda: post(app_client, "https://example.com/during"))
    assert elapsed < 2.0
    assert_names_aws(resp, "dynamodb GetItem")
    # After the hang: the same request succeeds, and the code made before is kept.
    assert post(app_client, "https://example.com/during").status_code == 201
    again = post(app_client, "https://example.com/made-before")
    assert again.status_code == 200 and json.loads(again.body)["id"] == before


def test_get_qr_on_a_cache_miss_is_a_503_within_two_seconds_then_served(app_client,
                                                                        own_moto):
    qr_id = created(app_client, "https://example.com/image")
    get_memcached().flush_all()  # a miss: the lookup reads DynamoDB
    resp, elapsed = timed_while_hung(own_moto,
                                     lambda: app_client.http.get(f"/qr/{qr_id}", headers=ANY))
    assert elapsed < 2.0
    assert_names_aws(resp, "dynamodb GetItem")
    resp = app_client.http.get(f"/qr/{qr_id}", headers=ANY)
    assert resp.status_code == 200 and decode_png(resp.body) == ["https://example.com/image"]


def test_a_slow_call_leaves_the_next_only_the_rest_of_the_request_budget(app_client,
                                                                         own_moto):
    # GetItem answers after 0.9 s (its first attempt times out, the retry gets the
    # answer), then PutObject hangs: with a fresh allowance per call the request took
    # 0.9 + 2 x 0.5 s and more; the request's AWS budget (1.5 s) ends it sooner.
    created(app_client, "https://example.com/warm")  # every client exists
    pause_before(own_moto, "dynamodb", "GetItem", resume_after=0.9)
    pause_before(own_moto, "s3", "PutObject")
    resp, elapsed = timed_while_hung(own_moto, lambda: post(app_client, "https://example.com/slow"),
                                     pause_now=False)
    assert elapsed < 1.8
    assert_names_aws(resp, "s3 PutObject")


def test_a_secret_read_gives_up_within_two_seconds(app_client, own_moto):
    # Secrets Manager is read on request paths (the Redis password, when a connection
    # is made): its client has the request-path limits even outside a route's budget.
    from chalicelib.clients import forget_secrets, get_secret
    from chalicelib.errors import is_dependency_failure

    arn = get_aws_client("secretsmanager").create_secret(
        Name="pulse/test/hung", SecretString="v1")["ARN"]
    assert get_secret(arn) == "v1"
    forget_secrets()
    own_moto.pause()
    try:
        started = time.perf_counter()
        with pytest.raises(Exception) as caught:
            get_secret(arn)
        elapsed = time.perf_counter() - started
    finally:
        own_moto.resume()
    assert elapsed < 2.0
    assert is_dependency_failure(caught.value), caught.value
    assert get_secret(arn) == "v1"


def test_no_attempt_starts_that_the_budget_could_not_wait_for(pulse_env):
    from chalicelib.aws_limits import AwsBudgetExceeded
    from chalicelib.budget import aws_budget

    ddb = get_aws_client("dynamodb")
    with aws_budget(pulse_env.aws_read_timeout / 2), pytest.raises(AwsBudgetExceeded) as caught:
        ddb.describe_table(TableName=pulse_env.qr_table)
    assert "dynamodb DescribeTable not sent" in str(caught.value)
    assert ddb.describe_table(TableName=pulse_env.qr_table)  # outside a request: no budget


def test_background_clients_keep_more_patience(pulse_env):
    request, background = get_aws_client("sqs"), get_aws_client("sqs", background=True)
    assert (request.meta.config.read_timeout, background.meta.config.read_timeout) == (
        pulse_env.aws_read_timeout, pulse_env.read_timeout)
    assert request.meta.config.retries["total_max_attempts"] == pulse_env.aws_attempts
    assert background.meta.config.retries["total_max_attempts"] == 4
