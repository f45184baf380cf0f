"""The hotspots feature's objects over this container's clients, built per call (cheap:
the Redis and Kinesis clients are the cached parts), for the routes and the consumer."""
from __future__ import annotations

from collections.abc import Callable


def get_store():
    """The click windows over the shared Redis client."""
    from chalicelib.clients import get_redis
    from chalicelib.hotspots.store import HotspotStore
    from chalicelib.settings import get_settings

    s = get_settings()
    return HotspotStore(get_redis(), s.hotspots_window_clicks, s.hotspots_window_seconds,
                        s.hotspots_max_pages)


def get_reader():
    from chalicelib.hotspots.reader import HotspotReader
    from chalicelib.settings import get_settings

    s = get_settings()
    return HotspotReader(get_store(), s.hotspots_scan_radius, s.hotspots_min_points)


def get_writer():
    from chalicelib.clients import get_aws_client
    from chalicelib.hotspots.writer import ClickWriter
    from chalicelib.settings import get_settings

    s = get_settings()
    # attempts=1 (no botocore retries): the writer retries only the failed
    # records, itself, within the deadline
    return ClickWriter(get_aws_client("kinesis", attempts=1), s.click_stream_name,
                       attempts=s.hotspots_put_attempts, backoff=s.hotspots_put_backoff,
                       call_seconds=s.connect_timeout + s.aws_read_timeout)


def get_consumer(retry_seconds: float | None = None,
                 remaining_ms: Callable[[], float] | None = None):
    """The Kinesis consumer over the shared Redis client.  `retry_seconds`: how long to
    retry while Redis is unavailable (default HOTSPOTS_CONSUME_RETRY_SECONDS), cut to fit
    the invocation when `remaining_ms` (the Lambda context's) is given."""
    from chalicelib.hotspots.consumer import HotspotConsumer, retry_seconds_within
    from chalicelib.settings import get_settings

    if retry_seconds is None:
        retry_seconds = get_settings().hotspots_consume_retry_seconds
    if remaining_ms is not None:
        retry_seconds = retry_seconds_within(retry_seconds, remaining_ms())
    return HotspotConsumer(get_store(), retry_seconds=retry_seconds,
                           streams=get_stream_tags())


def get_stream_tags():
    """The stream incarnation tags of this container (consumer.StreamTags), kept across
    invocations; their Kinesis client is the shared background one."""
    global _stream_tags
    if _stream_tags is None:
        from chalicelib.clients import get_aws_client
        from chalicelib.hotspots.consumer import StreamTags

        _stream_tags = StreamTags(lambda: get_aws_client("kinesis", background=True))
    return _stream_tags


_stream_tags = None
