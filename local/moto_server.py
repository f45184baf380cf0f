"""moto's server, with one fix for concurrent clicks: `PutRecords` made atomic per record.

moto's Kinesis gives a record the stream's last sequence number plus one and stores it
under that number, in two steps without a lock ("this function is not safe for
concurrency", moto 5.2.5 `Shard.put_record`): two requests served at once on its threads
can draw the same number, and the second overwrites the first.  Both answer success, so
a click answered 202 vanished from the stream: 5 of 6,000 records with 8 threads of
`PutRecords` (found by tests/test_fault_drills.py).  Kinesis itself never does this; the
lock makes the local stand-in keep every record it accepted.

    python local/moto_server.py -H 127.0.0.1 -p 15000   (moto_server's own arguments)
"""
from __future__ import annotations

import functools
import sys
import threading

if __name__ == "__main__":
    # run as a file (local/processes.py does): no module of local/ may shadow one moto imports
    del sys.path[0]


def make_kinesis_atomic() -> None:
    from moto.kinesis.models import Shard

    if getattr(Shard.put_record, "pulse_atomic", False):
        return
    lock = threading.Lock()
    unsafe = Shard.put_record

    @functools.wraps(unsafe)
    def put_record(self, *args, **kwargs):
        with lock:
            return unsafe(self, *args, **kwargs)

    put_record.pulse_atomic = True
    Shard.put_record = put_record


def main() -> int:
    make_kinesis_atomic()
    from moto.server import main as moto_main

    sys.argv[0] = "moto_server"
    return moto_main() or 0


if __name__ == "__main__":
    sys.exit(main())
