"""moto's server, with the steps it takes apart made atomic, as AWS's own are.

Kinesis: moto's Kinesis gives a record the stream's last sequence number plus one and stores it
under that number, in two steps without a lock ("this function is not safe for
concurrency", moto 5.2.5 `Shard.put_record`): two requests served at once on its threads
can draw the same number, and the second overwrites the first.  Both answer success, so
a click answered 202 would vanish from the stream (a few in thousands with 8 threads of
`PutRecords`, as the fault drills send them).  Kinesis itself never does this; the
lock makes the local stand-in keep every record it accepted.

DynamoDB: moto evaluates a write's ConditionExpression against the item it reads, then
stores the new item, without a lock.  Two conditional puts of one key served at once on
its threads can both pass `attribute_not_exists(pk)` and both answer success, where
DynamoDB serializes writes to an item and fails the second.  QR creation relies on that
conditional put for one winner among concurrent identical requests; one lock around
moto's item writes gives the stand-in DynamoDB's answer.

S3: a PutObject over an existing key makes moto close the old object's buffer, which a
concurrent PutObject of the same key is still reading for its ETag (or a GetObject for
its body): moto answers 500 `ValueError: I/O operation on closed file`.  S3 takes
concurrent writes of one key (the last wins), and QR's identical concurrent creations
each write the same object; the lock serializes moto's object requests.

    python local/moto_server.py -H 127.0.0.1 -p 15000   (moto_server's own arguments)
"""
from __future__ import annotations

import functools
import sys
import threading

if __name__ == "__main__":
    # run as a file (local/processes.py does): no module of local/ may shadow one moto imports
    del sys.path[0]


def make_atomic(cls: type, *names: str) -> None:
    """Serialize the calls of cls's methods `names` under one lock (re-entrant: one may
    call another)."""
    lock = threading.RLock()
    for name in names:
        unsafe = getattr(cls, name)
        if getattr(unsafe, "pulse_atomic", False):
            continue

        def atomic(self, *args, _unsafe=unsafe, **kwargs):
            with lock:
                return _unsafe(self, *args, **kwargs)

        functools.update_wrapper(atomic, unsafe)
        atomic.pulse_atomic = True
        setattr(cls, name, atomic)


def make_writes_atomic() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.kinesis.models import Shard
    from moto.s3.responses import S3Response

    make_atomic(Shard, "put_record")
    make_atomic(DynamoDBBackend, "put_item", "update_item", "delete_item",
                "transact_write_items")
    make_atomic(S3Response, "put_object", "get_object", "head_object", "copy_object",
                "delete_object")


def main() -> int:
    make_writes_atomic()
    from moto.server import main as moto_main

    sys.argv[0] = "moto_server"
    return moto_main() or 0


if __name__ == "__main__":
    sys.exit(main())
