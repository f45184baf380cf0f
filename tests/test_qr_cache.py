"""The QR lookup through memcached (the shared read-through component in front of QR's
GetItem): a hit without DynamoDB, a copy never outliving the item's ttl, no cached
"not found", memcached down -> DynamoDB.  Real memcached nodes and moto's server."""
from __future__ import annotations

import json
import socket
import time
from contextlib import contextmanager

from chalicelib.cache.discovery import parse_host_port
from chalicelib.clients import get_aws_client, get_memcached
from chalicelib.qr.cached import cache_key
from chalicelib.qr.spec import spec_from_dict
from tests.qr_support import decode_png, fetch, post


@contextmanager
def aws_calls(service: str):
    """The operation names of every call the app's `service` client makes meanwhile."""
    calls: list[str] = []

    def record(model, **_):
        calls.append(model.name)

    events = get_aws_client(service).meta.events
    events.register("before-call", record)
    try:
        yield calls
    finally:
        events.unregister("before-call", record)


def memcached_ttl(servers, key: str) -> int | None:
    """Seconds memcached keeps `key` (meta get `t` flag), asking every node; None: absent."""
    for server in servers:
        with socket.create_connection(parse_host_port(server), timeout=2) as conn:
            conn.sendall(f"mg {key} t\r\n".encode())
            reply = conn.makefile("rb").readline().split()
        if reply[0] == b"HD":
            return int(reply[1][1:])
    return None


def test_a_hit_is_served_from_memcached_without_any_dynamodb_call(app_client, pulse_env):
    body = {"url": "https://example.com/cached"}
    assert post(app_client, body)[0] == 201
    with aws_calls("dynamodb") as first_hit:
        status, filled = post(app_client, body)  # the first hit reads DynamoDB, fills memcached
    assert (status, filled["cached"], first_hit) == (200, True, ["GetItem"])
    with aws_calls("dynamodb") as calls:
        status, hit = post(app_client, body)
        image = app_client.http.get(f"/qr/{hit['id']}", headers={"Accept": "*/*"})
    assert (status, hit["cached"], image.status_code, calls) == (200, True, 200, [])
    assert {k: v for k, v in hit.items() if k != "image_url"} == \
        {k: v for k, v in filled.items() if k != "image_url"}
    # The presigned URL is signed per request, never cached: memcached holds no
    # signature, and the one this hit answered opens the image.
    raw = get_memcached().get(cache_key(hit["id"]))
    assert raw is not None and b"X-Amz-Signature" not in raw
    status, _, data = fetch(hit["image_url"])
    assert status == 200 and decode_png(data) == [body["url"]] and data == image.body


def test_memcached_down_answers_from_dynamodb(app_client, pulse_env, monkeypatch):
    from chalicelib.clients import reset_clients
    from local import processes

    monkeypatch.setenv("MEMCACHED_SERVERS", f"127.0.0.1:{processes.free_port()}")  # nobody
    reset_clients()
    body = {"url": "https://example.com/memcached-down"}
    started = time.monotonic()
    created_status, created = post(app_client, body)
    with aws_calls("dynamodb") as calls:
        status, again = post(app_client, body)
    elapsed = time.monotonic() - started
    assert (created_status, status, again["cached"]) == (201, 200, True)
    assert again["id"] == created["id"] and calls == ["GetItem"]
    assert app_client.http.get(f"/qr/{again['id']}?redirect=1").status_code == 302
    assert elapsed < 2.0


def test_a_copy_in_memcached_is_not_served_past_the_items_ttl(pulse_env, monkeypatch):
    from chalicelib.clients import reset_clients
    from chalicelib.qr import wiring

    monkeypatch.setenv("QR_TTL_SECONDS", "60")  # shorter than the 300 s memcached cap
    reset_clients()
    now = [time.time()]
    service = wiring.get_service(clock=lambda: now[0])
    spec = spec_from_dict({"url": "https://example.com/short-lived"})
    first = service.get_or_create(spec)
    assert first.created and not service.get_or_create(spec).created  # stored in memcached
    # memcached keeps the copy no longer than the item lives (not the 300 s cap).
    kept = memcached_ttl(pulse_env.memcached_servers, cache_key(spec.id))
    assert kept is not None and 0 < kept <= first.entry.ttl - int(now[0])
    with aws_calls("dynamodb") as calls:
        assert not service.get_or_create(spec).created
    assert calls == []

    now[0] = first.entry.ttl + 1  # the item's ttl has passed; memcached still holds the copy
    assert get_memcached().get(cache_key(spec.id)) is not None
    again = service.get_or_create(spec)
    assert again.created and again.entry.creation != first.entry.creation
    assert again.entry.ttl == int(now[0]) + 60


def test_a_creation_is_seen_by_the_next_identical_request(app_client, pulse_env):
    body = {"url": "https://example.com/seen", "format": "svg"}
    qr_id = spec_from_dict(body).id
    unknown = app_client.http.get(f"/qr/{qr_id}")  # a lookup that finds nothing...
    assert unknown.status_code == 404 and json.loads(unknown.body)["id"] == qr_id
    status, created = post(app_client, body)  # ...then a creation: nothing hides it
    assert (status, created["id"]) == (201, qr_id)
    assert get_memcached().get(cache_key(qr_id)) is None  # "not found" was never stored
    with aws_calls("s3") as s3_calls:
        status, again = post(app_client, body)
    assert (status, again["cached"], again["created_at"]) == (200, True, created["created_at"])
    assert "PutObject" not in s3_calls  # not rendered or written again
    assert app_client.http.get(f"/qr/{qr_id}",
                               headers={"Accept": "image/svg+xml"}).status_code == 200
