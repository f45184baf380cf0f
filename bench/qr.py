"""POST /qr on a miss and on a hit, next to the raw `qrcode` render of the same URLs.

In-process: chalice.test.Client over the real app (routing, json_api, validation,
the service), against a moto server and two memcached nodes the bench starts
(AWS_ENDPOINT_URL, MEMCACHED_SERVERS), with the local stage's resources provisioned.
For each of N distinct URLs, in turn:

    raw        qrcode.QRCode(M, box 10, border 4) + make(fit) + PNG save (no service)
    miss       POST /qr (memcached get, GetItem, render, PutObject, conditional
               PutItem, presign): `qr.created` follows from the table's stream
    miss + PutEvents   POST /qr of another new URL, then the PutEvents the request path
               made before the event moved to the stream, on the same request-path
               client, timed together: the miss as it was
    hit (ddb)  the same POST again: memcached get (empty), GetItem, memcached set,
               presign - the first hit after a creation, which fills memcached
    hit        the same POST a third time: one memcached get + presign (the bench
               checks it makes no DynamoDB call)

Interleaving the five per URL exposes them to the same machine noise.  Every
AWS call of a miss is also timed (botocore's before-call/after-call events) to
split a miss into "render", "AWS round trips to moto" and "the rest".

    python -m bench.qr [--n 300]
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

from bench import use_stack_env
from local import processes

ROOT = Path(__file__).resolve().parent.parent


def raw_render(url: str) -> bytes:
    import qrcode

    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=10, border=4)
    qr.add_data(url)
    qr.make(fit=True)
    out = io.BytesIO()
    qr.make_image().save(out)
    return out.getvalue()


def pct(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100)[q - 1] * 1000  # ms


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=300, help="distinct URLs")
    args = ap.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="pulse-bench-qr-"))
    moto = processes.moto_server(processes.free_port(), workdir).start(timeout=60)
    nodes = [processes.memcached_server(processes.free_port(), workdir, name=f"mc-{i}").start()
             for i in range(2)]
    try:
        use_stack_env(memcached_ports=[n.port for n in nodes], moto_port=moto.port)
        from chalice.test import Client

        import app as pulse_app
        from chalicelib.clients import get_aws_client, reset_clients
        from chalicelib.settings import Settings
        from local.provision import provision

        reset_clients()
        provision(Settings.from_env())
        aws_time = [0.0]
        per_call: dict[str, list[float]] = {}

        def started(context, **_):
            context["bench_t0"] = time.perf_counter()

        def finished(context, event_name, **_):
            if "bench_t0" in context:
                spent = time.perf_counter() - context["bench_t0"]
                aws_time[0] += spent
                per_call.setdefault(event_name.split(".")[-1], []).append(spent)

        for service in ("s3", "dynamodb", "events"):
            events = get_aws_client(service).meta.events
            events.register("before-call", started)
            events.register("after-call", finished)
        urls = [f"https://shop.example/campaign/{i:05d}?utm_source=qr&utm_medium=print"
                for i in range(args.n + 20)]
        raw, miss, hit_ddb, hit, miss_aws, miss_before = [], [], [], [], [], []
        from chalicelib.qr.events import DETAIL_TYPE, SOURCE, EventPublisher
        from chalicelib.settings import get_settings

        publisher = EventPublisher(get_aws_client("events"), get_settings().event_bus_name)
        headers = {"Content-Type": "application/json"}
        with Client(pulse_app.app, stage_name="local", project_dir=str(ROOT)) as client:
            for i, url in enumerate(urls):
                body = json.dumps({"url": url})
                t0 = time.perf_counter()
                raw_render(url)
                t1 = time.perf_counter()
                aws_time[0] = 0.0
                first = client.http.post("/qr", headers=headers, body=body)
                t2 = time.perf_counter()
                spent_in_aws = aws_time[0]
                filling = client.http.post("/qr", headers=headers, body=body)
                t3 = time.perf_counter()
                calls_before = len(per_call.get("GetItem", []))
                again = client.http.post("/qr", headers=headers, body=body)
                t4 = time.perf_counter()
                assert (first.status_code, filling.status_code, again.status_code) == \
                    (201, 200, 200)
                assert len(per_call.get("GetItem", [])) == calls_before, "hit read DynamoDB"
                t5 = time.perf_counter()
                old = client.http.post("/qr", headers=headers, body=json.dumps(
                    {"url": url.replace("shop.example", "before.example")}))
                made = json.loads(old.body)
                assert old.status_code == 201 and publisher.publish([{
                    "EventBusName": publisher.bus, "Source": SOURCE, "DetailType": DETAIL_TYPE,
                    "Detail": json.dumps({"id": made["id"], "url": made["url"],
                                          "domain": "before.example", "format": "png",
                                          "created_at": 0, "creation": made["id"]})}]) == 1
                t6 = time.perf_counter()
                if i >= 20:  # the first 20 warm imports, connections and moto
                    raw.append(t1 - t0)
                    miss.append(t2 - t1)
                    hit_ddb.append(t3 - t2)
                    hit.append(t4 - t3)
                    miss_aws.append(spent_in_aws)
                    miss_before.append(t6 - t5)
    finally:
        moto.stop()
        for node in nodes:
            node.stop()

    rows = [("raw qrcode render (PNG)", raw), ("POST /qr miss", miss),
            ("POST /qr miss + PutEvents (before)", miss_before),
            ("POST /qr hit from DynamoDB (fills)", hit_ddb), ("POST /qr hit", hit),
            ("  of a miss: AWS calls to moto", miss_aws)]
    print(f"{args.n} distinct URLs ({len(urls[0])} chars), in-process chalice.test.Client "
          "against moto server and two memcached nodes; ms")
    print(f"{'path':34} {'p50':>8} {'p99':>8}")
    for name, samples in rows:
        print(f"{name:34} {pct(samples, 50):8.2f} {pct(samples, 99):8.2f}")
    p50 = {name: pct(s, 50) for name, s in rows}
    print(f"miss / hit (p50): {p50['POST /qr miss'] / p50['POST /qr hit']:.1f}x")
    print(f"hit from DynamoDB / hit from memcached (p50): "
          f"{p50['POST /qr hit from DynamoDB (fills)'] / p50['POST /qr hit']:.1f}x")
    print(f"miss / raw (p50): {p50['POST /qr miss'] / p50['raw qrcode render (PNG)']:.2f}x")
    print("AWS calls, p50 ms: " + ", ".join(
        f"{op} {pct(t[20:], 50):.2f}" for op, t in sorted(per_call.items())))
    rest = [m - a for m, a in zip(miss, miss_aws, strict=True)]
    print(f"miss without its AWS calls / raw (p50): "
          f"{pct(rest, 50) / p50['raw qrcode render (PNG)']:.2f}x")


if __name__ == "__main__":
    main()
