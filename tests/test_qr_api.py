"""POST /qr and GET /qr/{id} on the local stack (moto server, Redis): cache, TTL,
concurrency, validation, presigned URLs, bytes through `chalice local`."""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest

from chalicelib.clients import get_aws_client
from tests.qr_support import decode_png, fetch, items, objects, post, post_http


@pytest.fixture(scope="module")
def validation_world(stack_env, live_server):
    """`chalice local` over one provisioned world for the tests that must store nothing
    (faster than a clean world per case); each still checks the bucket stays empty."""
    from chalicelib.clients import reset_clients
    from chalicelib.settings import Settings
    from local.provision import provision
    from tests.conftest import reset_moto

    with pytest.MonkeyPatch.context() as mp:
        for key, value in stack_env.items():
            mp.setenv(key, value)
        mp.delenv("AWS_REGION", raising=False)
        reset_clients()
        settings = Settings.from_env()
        reset_moto(stack_env["AWS_ENDPOINT_URL"])
        provision(settings)
        yield live_server, settings
        reset_clients()


def test_second_identical_request_is_a_hit_with_one_object_and_one_item(app_client, pulse_env):
    first_status, first = post(app_client, {"url": "https://Example.COM:443"})
    again_status, again = post(app_client, {"url": "https://example.com/"})
    assert (first_status, first["cached"]) == (201, False)
    assert (again_status, again["cached"]) == (200, True)
    assert first["id"] == again["id"] and first["url"] == "https://example.com/"
    assert objects(pulse_env) == [f"qr/{first['id']}.png"]
    assert len(items(pulse_env)) == 1
    # Different options are a different code.
    status, other = post(app_client, {"url": "https://example.com/", "error_correction": "H"})
    assert status == 201 and other["id"] != first["id"]


def test_image_url_is_a_sigv4_presigned_get_of_the_private_object(app_client, pulse_env):
    _, body = post(app_client, {"url": "https://example.com/presigned"})
    query = parse_qs(urlsplit(body["image_url"]).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert 0 < int(query["X-Amz-Expires"][0]) <= pulse_env.qr_presign_seconds
    status, headers, data = fetch(body["image_url"])
    assert status == 200 and headers["content-type"] == "image/png"
    assert decode_png(data) == ["https://example.com/presigned"]
    # The object is private: its ACL grants its owner only, and the bucket blocks
    # public access (the image is reached through a presigned URL).
    s3 = get_aws_client("s3")
    acl = s3.get_object_acl(Bucket=pulse_env.qr_bucket, Key=f"qr/{body['id']}.png")
    assert [g["Grantee"].get("URI") for g in acl["Grants"]] == [None]
    assert s3.get_public_access_block(Bucket=pulse_env.qr_bucket)[
        "PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True


def test_expired_item_still_in_the_table_is_a_miss(app_client, pulse_env):
    status, body = post(app_client, {"url": "https://example.com/old"})
    assert status == 201
    table, key = pulse_env.qr_table, {"pk": {"S": f"qr#{body['id']}"}}
    ddb = get_aws_client("dynamodb")
    past = int(time.time()) - 1
    ddb.update_item(TableName=table, Key=key, UpdateExpression="SET #t = :t",
                    ExpressionAttributeNames={"#t": "ttl"},
                    ExpressionAttributeValues={":t": {"N": str(past)}})
    assert len(items(pulse_env)) == 1  # DynamoDB has not deleted it (it does so lazily)
    assert app_client.http.get(f"/qr/{body['id']}").status_code == 404
    status, again = post(app_client, {"url": "https://example.com/old"})
    assert (status, again["cached"]) == (201, False)
    ttl = int(ddb.get_item(TableName=table, Key=key)["Item"]["ttl"]["N"])
    # The TTL is computed for this request: a day from now, not from the first creation.
    assert abs(ttl - (time.time() + pulse_env.qr_ttl_seconds)) < 60
    assert len(items(pulse_env)) == 1 and len(objects(pulse_env)) == 1


def test_get_by_id_serves_bytes_or_redirects(app_client):
    _, body = post(app_client, {"url": "https://example.com/get", "format": "svg"})
    resp = app_client.http.get(f"/qr/{body['id']}", headers={"Accept": "image/svg+xml"})
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "image/svg+xml"
    assert resp.body.startswith(b"<?xml") and b"<svg" in resp.body
    resp = app_client.http.get(f"/qr/{body['id']}?redirect=1")
    assert resp.status_code == 302
    status, _, data = fetch(resp.headers["Location"])
    assert status == 200 and data == app_client.http.get(
        f"/qr/{body['id']}", headers={"Accept": "*/*"}).body


@pytest.mark.parametrize("path, status, field", [
    ("/qr/not-an-id", 400, "id"),
    ("/qr/" + "A" * 32, 400, "id"),  # upper case is not base32 as we write it
    ("/qr/" + "a" * 31, 400, "id"),
    ("/qr/" + "a" * 32 + "?redirect=yes", 400, "redirect"),
    ("/qr/" + "a" * 32, 404, None),
])
def test_get_by_id_rejects_malformed_and_unknown_ids(validation_world, path, status, field):
    base, _ = validation_world
    got, _, raw = fetch(base + path)
    body = json.loads(raw)
    assert got == status, body
    assert body.get("field") == field


LONG = "https://example.com/" + "a" * 2029  # 2,049 characters


@pytest.mark.parametrize("body, field", [
    ({"url": "javascript:alert(1)"}, "url"),
    ({"url": "data:text/html,<b>x</b>"}, "url"),
    ({"url": "file:///etc/passwd"}, "url"),
    ({"url": "ftp://example.com/x"}, "url"),
    ({"url": "https://"}, "url"),
    ({"url": "https:///path-only"}, "url"),
    ({"url": "example.com/no-scheme"}, "url"),
    ({"url": "https://user:secret@example.com/"}, "url"),
    ({"url": "https://user@example.com/"}, "url"),
    ({"url": LONG}, "url"),
    ({"url": ""}, "url"),
    ({"url": 42}, "url"),
    ({"url": "https://example.com/a\nb"}, "url"),
    ({"url": "https://example.com:99999/"}, "url"),
    ({"url": "https://xn--a.xn--b/"}, "url"),
    ({}, "url"),
    ({"url": "https://e.com", "format": "gif"}, "format"),
    ({"url": "https://e.com", "size": 0}, "size"),
    ({"url": "https://e.com", "size": 41}, "size"),
    ({"url": "https://e.com", "size": "10"}, "size"),
    ({"url": "https://e.com", "size": True}, "size"),
    ({"url": "https://e.com", "size": 10.5}, "size"),
    ({"url": "https://e.com", "border": float("inf")}, "border"),
    ({"url": "https://e.com", "border": -1}, "border"),
    ({"url": "https://e.com", "border": 17}, "border"),
    ({"url": "https://e.com", "error_correction": "X"}, "error_correction"),
    ({"url": "https://e.com", "fg": "red"}, "fg"),
    ({"url": "https://e.com", "bg": "#fffff"}, "bg"),
    ({"url": "https://e.com", "fg": "#777777", "bg": "#888888"}, "bg"),  # no contrast
    ({"url": "https://e.com", "colour": "#000000"}, "colour"),  # unknown field
    ({"url": "https://example.com/" + "a" * 2000, "error_correction": "H"}, "url"),  # too big
])
def test_each_bad_input_is_a_400_naming_its_field(validation_world, body, field):
    base, settings = validation_world
    status, answer = post_http(base, body)
    assert status == 400, answer
    assert answer["error"] == "BadRequest" and answer["field"] == field, answer
    assert objects(settings) == []  # nothing was rendered or stored


@pytest.mark.parametrize("raw, field", [
    (b"not json", "body"),
    (b"[1, 2]", "body"),
    (b'"https://example.com"', "body"),
    (b'{"url": "https://e.com", "url": "https://f.com"}', "url"),
    (b"\xff\xfe{}", "body"),
    (json.dumps({"url": "https://e.com/", "pad": "x" * 9000}).encode(), "body"),
    (b"[" * 4000 + b"]" * 4000, "body"),  # deeper than json's recursion limit, under 8 KB
])
def test_malformed_bodies_are_400_naming_the_body(validation_world, raw, field):
    status, answer = post_http(validation_world[0], None, raw=raw)
    assert (status, answer["field"]) == (400, field), answer


def test_a_whole_size_written_as_a_float_is_that_integer(app_client):
    # JSON Schema's `integer` (the API contract) admits 10.0, so the route takes it
    status, first = post(app_client, {"url": "https://example.com/f", "size": 10.0,
                                      "border": 4.0})
    assert (status, first["size"], first["border"]) == (201, 10, 4)
    status, again = post(app_client, {"url": "https://example.com/f"})  # the same code
    assert (status, again["id"]) == (200, first["id"])


def test_valid_international_urls_are_accepted_in_ascii_form(app_client):
    status, body = post(app_client, {"url": "https://Bücher.example/straße?q=ä#frag"})
    assert status == 201
    assert body["url"] == "https://xn--bcher-kva.example/stra%C3%9Fe?q=%C3%A4#frag"


def test_the_request_path_makes_no_putevents_call(app_client, pulse_env):
    """`qr.created` follows from the item's write (the table's stream), not the request."""
    calls = []
    for client in (get_aws_client("events"), get_aws_client("events", background=True)):
        client.meta.events.register("before-call.events.PutEvents",
                                    lambda **kw: calls.append(kw))
    status, body = post(app_client, {"url": "https://example.com/no-events-here"})
    assert status == 201 and body["cached"] is False
    assert calls == []
    # the item's new image is on the table's stream, for the qr_item_written handler
    streams = get_aws_client("dynamodbstreams")
    arn = get_aws_client("dynamodb").describe_table(TableName=pulse_env.qr_table)[
        "Table"]["LatestStreamArn"]
    [shard] = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    [record] = streams.get_records(ShardIterator=it)["Records"]
    assert record["eventName"] == "INSERT"
    assert record["dynamodb"]["NewImage"]["pk"] == {"S": f"qr#{body['id']}"}


@pytest.mark.slow
def test_twenty_concurrent_identical_requests_make_one_object_and_one_item(live_app, pulse_env):
    body = {"url": "https://example.com/crowd", "format": "svg", "size": 4}
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: post_http(live_app, body, timeout=30), range(20)))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * 19 + [201], answers
    assert len({a["id"] for _, a in answers}) == 1
    assert len(objects(pulse_env)) == 1
    assert len(items(pulse_env)) == 1


@pytest.mark.slow
def test_chalice_local_serves_the_exact_bytes(live_app):
    status, body = post_http(live_app, {"url": "https://example.com/bytes"})
    assert status == 201
    _, _, from_s3 = fetch(body["image_url"])
    status, headers, data = fetch(f"{live_app}/qr/{body['id']}", headers={"Accept": "*/*"})
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert data == from_s3 and decode_png(data) == ["https://example.com/bytes"]
    status, headers, _ = fetch(f"{live_app}/qr/{body['id']}?redirect=1")
    assert status == 302 and headers["Location"].startswith("http://127.0.0.1")


def test_twenty_concurrent_creations_in_process_race_to_one_item(pulse_env):
    # The component with 20 threads, all missing the cache at once: every one
    # renders and writes the same key; the conditional put lets one create.
    from chalicelib.qr import api

    body = json.dumps({"url": "https://example.com/race", "size": 2}).encode()
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: api.create(body), range(20)))
    assert sorted(status for _, status in answers) == [200] * 19 + [201]
    assert len({a["id"] for a, _ in answers}) == 1
    assert len(objects(pulse_env)) == 1 and len(items(pulse_env)) == 1


def test_aws_unreachable_is_a_503_within_two_seconds(app_client, monkeypatch):
    from chalicelib.clients import reset_clients
    from local import processes

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{processes.free_port()}")  # nobody
    reset_clients()
    started = time.monotonic()
    status, body = post(app_client, {"url": "https://example.com/aws-down"})
    assert time.monotonic() - started < 2.0
    assert (status, body["error"]) == (503, "ServiceUnavailable")


def test_a_hit_never_imports_the_renderer(app_client, pulse_env):
    # A fresh interpreter answers a hit: qrcode and PIL stay unloaded (cold starts).
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    post(app_client, {"url": "https://example.com/warm"})
    script = (
        "import json, sys\n"
        "from chalice.test import Client\n"
        "import app\n"
        "with Client(app.app, stage_name='local', project_dir='.') as c:\n"
        "    r = c.http.post('/qr', headers={'Content-Type': 'application/json'},\n"
        "                    body=json.dumps({'url': 'https://example.com/warm'}))\n"
        "print(r.status_code, sorted(m for m in ('qrcode', 'PIL') if m in sys.modules))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip().splitlines()[-1] == "200 []", done.stdout + done.stderr
