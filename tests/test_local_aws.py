"""The local AWS stand-in (local/moto_server.py) keeps AWS's guarantees that the app relies on.

DynamoDB serializes writes to one item, so of concurrent conditional puts of one key at
most one passes `attribute_not_exists`; moto checks and writes in two steps.  A loaded
machine preempts a moto thread between the two now and then (a fresh-clone `make test`
once saw two QR creations both answer 201).  The in-process test widens that gap with a
delay in moto's read of the current item, so the race is certain without the lock and
the test fails without the fix; the burst against the stack's moto checks the same
guarantee over HTTP, as the app meets it.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from local import moto_server

CONDITION = {
    "ConditionExpression": "attribute_not_exists(pk) OR #ttl <= :now",
    "ExpressionAttributeNames": {"#ttl": "ttl"},
    "ExpressionAttributeValues": {":now": {"N": "50"}},
}


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
    import boto3
    from botocore.config import Config

    kwargs = {"endpoint_url": f"http://127.0.0.1:{moto_server.port}", "region_name": "us-east-1",
              "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    table = f"race-{time.monotonic_ns()}"
    boto3.client("dynamodb", **kwargs).create_table(
        TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST")
    rounds, threads = 40, 20
    wins = [0] * rounds
    start = threading.Barrier(threads)
    lock = threading.Lock()

    def writer(i: int) -> None:
        client = boto3.session.Session().client(
            "dynamodb", config=Config(retries={"total_max_attempts": 1}), **kwargs)
        for r in range(rounds):
            start.wait()
            try:
                client.put_item(TableName=table, Item={"pk": {"S": f"k{r}"}, "ttl": {"N": "100"}},
                                **CONDITION)
                with lock:
                    wins[r] += 1
            except client.exceptions.ConditionalCheckFailedException:
                pass

    workers = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert wins == [1] * rounds
