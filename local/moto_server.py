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

API Gateway: moto's ImportRestApi reads the document's `info.description` unguarded
(moto 5.2.5 `APIGatewayBackend.import_rest_api`) and answers 500 `KeyError: 'description'`
when it is absent; OpenAPI makes it optional and Chalice's swagger has none, so
`chalice deploy` against moto stopped there.  API Gateway imports such a document with an
empty description; the wrapper gives moto the document with `description: ""` when it
has none.  Next, moto's PutRestApi (which the import calls, and Chalice calls on a
redeploy) refuses any Swagger 2.0 document (400 "Only OpenAPI 3.x.x are currently
supported") that API Gateway accepts; what moto reads of a document (paths, methods,
their responses and `x-amazon-apigateway-integration`) has the same shape in Swagger 2.0
and OpenAPI 3, so the wrapper hands it a Swagger 2.0 document labelled `openapi: 3.0.1`,
and applies the document's `x-amazon-apigateway-binary-media-types` (Chalice's image and
octet-stream types), which moto ignores.  The caller's document is never changed.

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


# The document's binary media types, which API Gateway applies on import and moto ignores.
BINARY_MEDIA_TYPES = "x-amazon-apigateway-binary-media-types"


def import_swagger() -> None:
    """ImportRestApi / PutRestApi of a Swagger 2.0 document without info.description, as
    Chalice writes it, import its paths as API Gateway does."""
    from moto.apigateway.models import APIGatewayBackend

    if getattr(APIGatewayBackend.import_rest_api, "pulse_swagger", False):
        return
    unsafe_import, unsafe_put = APIGatewayBackend.import_rest_api, APIGatewayBackend.put_rest_api

    def import_rest_api(self, api_doc, fail_on_warnings):
        info = api_doc.get("info") if isinstance(api_doc, dict) else None
        if isinstance(info, dict) and "description" not in info:
            api_doc = {**api_doc, "info": {**info, "description": ""}}
        return unsafe_import(self, api_doc, fail_on_warnings)

    def put_rest_api(self, function_id, api_doc, fail_on_warnings, mode="merge"):
        if isinstance(api_doc, dict) and str(api_doc.get("swagger", "")).startswith("2."):
            api_doc = {k: v for k, v in api_doc.items() if k != "swagger"}
            api_doc["openapi"] = "3.0.1"
        api = unsafe_put(self, function_id, api_doc, fail_on_warnings, mode)
        binary = api_doc.get(BINARY_MEDIA_TYPES) if isinstance(api_doc, dict) else None
        if isinstance(binary, list):
            api.binaryMediaTypes = list(binary)
        return api

    for wrapper, unsafe in ((import_rest_api, unsafe_import), (put_rest_api, unsafe_put)):
        functools.update_wrapper(wrapper, unsafe)
        wrapper.pulse_swagger = True
        setattr(APIGatewayBackend, unsafe.__name__, wrapper)


def main() -> int:
    make_writes_atomic()
    import_swagger()
    from moto.server import main as moto_main

    sys.argv[0] = "moto_server"
    return moto_main() or 0


if __name__ == "__main__":
    sys.exit(main())
