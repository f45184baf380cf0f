"""How long the app takes to answer when AWS hangs (moto's server paused: it keeps its
port and answers nothing), per route, in-process through chalice.test.Client over the
real app against a moto server, a redis-server and two memcached nodes the bench starts.

    health           GET /health, moto paused
    POST /qr miss    a new URL, moto paused (the first call, GetItem, hangs)
    GET /qr/{id}     a code made before the hang, memcached flushed (GetItem hangs)
    slow then hung   POST /qr of a new URL: moto paused before GetItem and resumed after
                     0.9 s (the GetItem succeeds late), paused again before PutObject
    get_secret       chalicelib.clients.get_secret outside any request, moto paused

Warm container: every client exists before the timed requests.  Each case runs --n
times; the table gives the status codes seen and the median and largest time.

    python -m bench.aws_hang [--n 3]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from bench import use_stack_env
from local import faults, processes

ROOT = Path(__file__).resolve().parent.parent
SLOW_GETITEM = 0.9  # seconds moto stays paused under the "slow then hung" GetItem


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=3, help="runs per case")
    args = ap.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="pulse-bench-aws-hang-"))
    moto = processes.moto_server(processes.free_port(), workdir).start(timeout=60)
    redis = processes.redis_server(processes.free_port(), workdir / "redis").start()
    nodes = [processes.memcached_server(processes.free_port(), workdir, name=f"mc-{i}").start()
             for i in range(2)]
    results: dict[str, list[tuple[object, float]]] = {}
    try:
        use_stack_env(redis_port=redis.port, memcached_ports=[n.port for n in nodes],
                      moto_port=moto.port)
        from chalice.test import Client

        import app as pulse_app
        from chalicelib.clients import (
            forget_secrets,
            get_aws_client,
            get_memcached,
            get_secret,
            reset_clients,
        )
        from chalicelib.settings import Settings
        from local.provision import provision

        reset_clients()
        provision(Settings.from_env())
        secret_id = get_aws_client("secretsmanager").create_secret(
            Name="bench/secret", SecretString="s3cret")["ARN"]
        headers = {"Content-Type": "application/json"}
        hooks: dict[str, callable] = {}

        def pause_before(service: str, operation: str, resume_after: float | None = None):
            hooks[faults.pause_before(moto, get_aws_client(service), operation,
                                      resume_after)] = service

        def clear_hooks():
            for name, service in hooks.items():
                get_aws_client(service).meta.events.unregister(name, unique_id=name)
            hooks.clear()

        def timed(case: str, call):
            started = time.perf_counter()
            try:
                outcome = call()
            except Exception as exc:  # get_secret raises
                outcome = type(exc).__name__
            finally:
                elapsed = time.perf_counter() - started
                clear_hooks()
                moto.resume()
            results.setdefault(case, []).append((outcome, elapsed))

        with Client(pulse_app.app, stage_name="local", project_dir=str(ROOT)) as client:
            def post(url: str):
                return client.http.post("/qr", headers=headers, body=json.dumps({"url": url}))

            made = post("https://shop.example/made-before-the-hang")  # warms every client
            assert made.status_code == 201, made.body
            qr_id = json.loads(made.body)["id"]
            get_secret(secret_id)
            assert client.http.get("/health").status_code == 200
            def get_image():
                return client.http.get(f"/qr/{qr_id}", headers={"Accept": "*/*"})

            def paused(call):
                def run():
                    moto.pause()
                    return call()
                return run

            def one_round(i: int) -> None:
                timed("health", paused(lambda: client.http.get("/health").status_code))
                timed("POST /qr miss", paused(
                    lambda: post(f"https://shop.example/hung/{i}").status_code))
                get_memcached().flush_all()
                timed("GET /qr/{id} (memcached miss)", paused(lambda: get_image().status_code))

                def slow_then_hung():
                    pause_before("dynamodb", "GetItem", resume_after=SLOW_GETITEM)
                    pause_before("s3", "PutObject")
                    return post(f"https://shop.example/slow-then-hung/{i}").status_code
                timed(f"POST /qr, GetItem {SLOW_GETITEM}s then PutObject hangs", slow_then_hung)

                forget_secrets()
                timed("get_secret (no request)", paused(lambda: get_secret(secret_id)))

            for i in range(args.n):
                one_round(i)
            after = get_image()
            assert after.status_code == 200, (after.status_code, after.body[:300])
    finally:
        moto.resume()
        for server in (moto, redis, *nodes):
            server.stop()

    print(f"moto paused; {args.n} runs per case, in-process chalice.test.Client, warm clients")
    print(f"{'case':48} {'outcomes':>16} {'median s':>9} {'max s':>7}")
    for case, runs in results.items():
        outcomes = ",".join(sorted({str(o) for o, _ in runs}))
        times = [t for _, t in runs]
        print(f"{case:48} {outcomes:>16} {statistics.median(times):9.2f} {max(times):7.2f}")


if __name__ == "__main__":
    main()
