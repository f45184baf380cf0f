"""AWS answering "not now" (throttled after botocore's retries, a 5xx, no credentials) is a
503 naming `aws` with Retry-After on every AWS call of the request paths; a misconfiguration
(AccessDenied, a missing resource) stays a 500 whose log line names the call and the code."""
from __future__ import annotations

import json
import logging

import pytest

from chalicelib.clients import get_aws_client, reset_clients
from tests.qr_support import JSON, post


def aws_error(code: str, status: int):
    """A before-call hook that answers `code` without sending the request."""
    from botocore.awsrequest import AWSResponse

    def answer(**_):
        return (AWSResponse("http://aws.injected/", status, {}, None),
                {"Error": {"Code": code, "Message": "injected"},
                 "ResponseMetadata": {"HTTPStatusCode": status}})

    return answer


@pytest.fixture
def inject(pulse_env):
    """inject(client, "dynamodb.GetItem", hook): the hook answers that call until the test ends."""
    hooked = []

    def register(client, call: str, hook) -> None:
        client.meta.events.register(f"before-call.{call}", hook)
        hooked.append((client, call, hook))

    yield register
    for client, call, hook in hooked:
        client.meta.events.unregister(f"before-call.{call}", hook)


def create(app_client, url: str) -> dict:
    status, body = post(app_client, {"url": url})
    assert status == 201, body
    return body


def assert_aws_503(resp, call: str | None = None) -> dict:
    body = json.loads(resp.body)
    assert resp.status_code == 503, body
    assert body["error"] == "ServiceUnavailable" and body["dependency"] == "aws"
    assert int(resp.headers["Retry-After"]) >= 1
    if call:
        assert call in body["message"]
    return body


THROTTLED = [("ThrottlingException", 400), ("ProvisionedThroughputExceededException", 400),
             ("SlowDown", 503), ("InternalError", 500)]


@pytest.mark.parametrize("code,status", THROTTLED)
@pytest.mark.parametrize("call", ["dynamodb.GetItem", "s3.PutObject", "dynamodb.PutItem"])
def test_post_qr_throttled_or_failing_aws_call_is_a_503(app_client, inject, call, code, status):
    service = call.split(".")[0]
    inject(get_aws_client(service), call, aws_error(code, status))
    resp = app_client.http.post("/qr", headers=JSON,
                                body=json.dumps({"url": f"https://example.com/{code}"}))
    assert_aws_503(resp, call.split(".")[1])


@pytest.mark.parametrize("call", ["dynamodb.GetItem", "s3.GetObject"])
def test_get_qr_image_throttled_is_a_503(app_client, inject, call):
    from chalicelib.clients import get_memcached

    made = create(app_client, "https://example.com/image-throttled")
    get_memcached().flush_all()  # the entry comes from DynamoDB again
    inject(get_aws_client(call.split(".")[0]), call, aws_error("ThrottlingException", 400))
    resp = app_client.http.get(f"/qr/{made['id']}", headers={"Accept": "image/png"})
    assert_aws_503(resp, call.split(".")[1])


def test_post_clicks_throttled_is_a_503_with_retry_after(app_client, inject):
    inject(get_aws_client("kinesis", attempts=1), "kinesis.PutRecords",
           aws_error("ProvisionedThroughputExceededException", 400))
    resp = app_client.http.post("/clicks", headers=JSON, body=json.dumps(
        {"page": "home", "clicks": [{"x": 0.5, "y": 0.5, "t": 1_700_000_000_000}]}))
    body = assert_aws_503(resp)
    assert body["accepted"] == 0 and body["failed"][0]["code"] == \
        "ProvisionedThroughputExceededException"


def test_no_credentials_is_a_503_naming_aws(app_client, monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    reset_clients()
    resp = app_client.http.post("/qr", headers=JSON,
                                body=json.dumps({"url": "https://example.com/no-creds"}))
    body = assert_aws_503(resp)
    assert "NoCredentialsError" in body["message"]


def test_access_denied_stays_a_500_and_its_log_names_the_call_and_code(app_client, inject,
                                                                       caplog):
    inject(get_aws_client("dynamodb"), "dynamodb.GetItem", aws_error("AccessDeniedException",
                                                                      400))
    with caplog.at_level(logging.ERROR, logger="pulse"):
        resp = app_client.http.post("/qr", headers=JSON,
                                    body=json.dumps({"url": "https://example.com/denied"}))
    assert resp.status_code == 500
    assert any("GetItem" in r.getMessage() and "AccessDeniedException" in r.getMessage()
               for r in caplog.records)
