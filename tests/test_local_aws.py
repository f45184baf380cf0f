"""The local AWS stand-in (local/moto_server.py) keeps the AWS guarantees the app relies on.

S3 takes concurrent PutObjects of one key (the last wins); moto closes the old object's
buffer on an overwrite while a concurrent request still reads it, and answers 500.  QR's
concurrent identical creations each write the same object, so `make test` saw one of 20
concurrent identical `POST /qr` answer 500 now and then.  The burst below fails on moto
alone in every run (300 KB bodies widen the gap) and passes through the stand-in.

DynamoDB serializes writes to one item, so of concurrent conditional puts of one key one
passes `attribute_not_exists`; moto checks and writes in two steps.  The in-process test
widens that gap with a delay in moto's read of the current item, so the race is certain
without the lock.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from local import moto_server, processes

CONDITION = {
    "ConditionExpression": "attribute_not_exists(pk) OR #ttl <= :now",
    "ExpressionAttributeNames": {"#ttl": "ttl"},
    "ExpressionAttributeValues": {":now": {"N": "50"}},
}


def _client(service: str, port: int, attempts: int | None = None):
    """A boto3 client of the moto at `port` (one attempt per call when `attempts` is 1)."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"total_max_attempts": attempts}) if attempts else None
    return boto3.session.Session().client(
        service, endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing", config=config)


def _in_bursts(threads: int, rounds: int, one_round) -> None:
    """`threads` threads run `one_round(thread, round)` for each round, starting each
    round together."""
    start = threading.Barrier(threads)

    def run(i: int) -> None:
        for r in range(rounds):
            start.wait()
            one_round(i, r)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, range(threads)))


def _widened_backend(monkeypatch, atomic: bool):
    """moto's DynamoDB backend in this process, a table `race`, and the item read that a
    conditional put checks against made 5 ms slow (a preemption at the worst moment)."""
    from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
    from moto.dynamodb.models.table import Table

    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        monkeypatch.setattr(DynamoDBBackend, name, getattr(DynamoDBBackend, name))
    if atomic:
        moto_server.make_writes_atomic()
    read = Table.get_item

    def slow_read(self, *args, **kwargs):
        current = read(self, *args, **kwargs)
        time.sleep(0.005)
        return current

    monkeypatch.setattr(Table, "get_item", slow_read)
    backend = dynamodb_backends["123456789012"]["us-east-1"]
    if "race" in backend.tables:
        backend.delete_table("race")
    backend.create_table("race", schema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         attr=[{"AttributeName": "pk", "AttributeType": "S"}],
                         billing_mode="PAY_PER_REQUEST", throughput=None, indexes=None,
                         global_indexes=None, streams=None, sse_specification=None,
                         tags=None, deletion_protection_enabled=None, warm_throughput=None)
    return backend


def _winners(backend, key: str, threads: int = 20) -> int:
    from moto.dynamodb.exceptions import ConditionalCheckFailed

    start = threading.Barrier(threads)

    def put(i: int) -> bool:
        start.wait()
        try:
            backend.put_item("race", {"pk": {"S": key}, "ttl": {"N": "100"}, "w": {"N": str(i)}},
                             condition_expression=CONDITION["ConditionExpression"],
                             expression_attribute_names=CONDITION["ExpressionAttributeNames"],
                             expression_attribute_values=CONDITION["ExpressionAttributeValues"])
            return True
        except ConditionalCheckFailed:
            return False

    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(put, range(threads)))


def test_concurrent_conditional_puts_of_one_key_have_one_winner(monkeypatch):
    backend = _widened_backend(monkeypatch, atomic=True)
    assert [_winners(backend, f"k{n}") for n in range(5)] == [1] * 5


def test_moto_alone_still_lets_two_conditional_puts_win(monkeypatch):
    """The defect the lock is for, so the test above is known to fail without the fix
    (when moto serializes its own writes, this fails and the lock can go)."""
    backend = _widened_backend(monkeypatch, atomic=False)
    assert max(_winners(backend, f"k{n}") for n in range(3)) > 1


@pytest.mark.slow
def test_the_stacks_dynamodb_has_one_winner_per_burst_over_http(moto_server):
    table = f"race-{time.monotonic_ns()}"
    _client("dynamodb", moto_server.port).create_table(
        TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST")
    rounds, threads = 40, 20
    wins = [0] * rounds
    lock = threading.Lock()
    clients = [_client("dynamodb", moto_server.port, attempts=1) for _ in range(threads)]

    def put(i: int, r: int) -> None:
        client = clients[i]
        try:
            client.put_item(TableName=table, Item={"pk": {"S": f"k{r}"}, "ttl": {"N": "100"}},
                            **CONDITION)
            with lock:
                wins[r] += 1
        except client.exceptions.ConditionalCheckFailedException:
            pass

    _in_bursts(threads, rounds, put)
    assert wins == [1] * rounds


def _s3_burst_errors(port: int, rounds: int = 10, threads: int = 20) -> list[str]:
    """Each round, `threads` clients PUT then GET one key at once: the errors seen."""
    bucket = f"race-{time.monotonic_ns()}"
    _client("s3", port).create_bucket(Bucket=bucket)
    body = b"x" * 300_000
    errors: list[str] = []
    clients = [_client("s3", port, attempts=1) for _ in range(threads)]

    def put_then_get(i: int, _round: int) -> None:
        try:
            clients[i].put_object(Bucket=bucket, Key="same", Body=body)
            assert clients[i].get_object(Bucket=bucket, Key="same")["Body"].read() == body
        except Exception as exc:  # collected: the assertion names them
            errors.append(repr(exc)[:160])

    _in_bursts(threads, rounds, put_then_get)
    return errors


@pytest.mark.slow
def test_the_stacks_s3_takes_concurrent_writes_and_reads_of_one_key(moto_server):
    assert _s3_burst_errors(moto_server.port) == []


@pytest.mark.slow
def test_moto_alone_fails_concurrent_writes_of_one_key(tmp_path):
    """The defect the S3 lock is for, so the test above is known to fail without it."""
    import sys

    port = processes.free_port()
    plain = processes.Server("plain-moto", port, [sys.executable, "-m", "moto.server",
                                                  "-H", "127.0.0.1", "-p", str(port)],
                             tmp_path).start(timeout=60)
    try:
        assert any("(500)" in e for e in _s3_burst_errors(port))
    finally:
        plain.stop()


# A Swagger 2.0 document as Chalice writes it: info has a title and a version, no
# description (moto alone: KeyError on the import, then a 400 for Swagger 2.0).
CHALICE_SWAGGER = {
    "swagger": "2.0", "info": {"version": "1.0", "title": "pulse"}, "schemes": ["https"],
    "x-amazon-apigateway-binary-media-types": ["image/png", "application/octet-stream"],
    "paths": {"/health": {"get": {"responses": {"200": {"description": "200 response"}}}}},
}


def _apigateway_backend(monkeypatch, fixed: bool):
    from moto.apigateway.models import APIGatewayBackend, apigateway_backends

    for name in ("import_rest_api", "put_rest_api"):
        monkeypatch.setattr(APIGatewayBackend, name, getattr(APIGatewayBackend, name))
    if fixed:
        moto_server.import_swagger()
    return apigateway_backends["123456789012"]["us-east-1"]


def test_moto_alone_cannot_import_a_swagger_without_a_description(monkeypatch):
    backend = _apigateway_backend(monkeypatch, fixed=False)
    with pytest.raises(KeyError, match="description"):
        backend.import_rest_api(CHALICE_SWAGGER, fail_on_warnings=False)


def test_the_stand_in_imports_chalices_swagger_with_an_empty_description(monkeypatch):
    backend = _apigateway_backend(monkeypatch, fixed=True)
    api = backend.import_rest_api(CHALICE_SWAGGER, fail_on_warnings=False)
    assert (api.name, api.description) == ("pulse", "")
    assert api.binaryMediaTypes == ["image/png", "application/octet-stream"]
    assert "/health" in {r.get_path() for r in api.resources.values()}
    # ...and a redeploy's PutRestApi of the same Swagger 2.0 document
    backend.put_rest_api(api.id, CHALICE_SWAGGER, fail_on_warnings=False, mode="overwrite")
    assert "description" not in CHALICE_SWAGGER["info"]  # the caller's document is unchanged
    backend.delete_rest_api(api.id)
