"""Pulse: the table of handlers.  Each parses, calls chalicelib, shapes the answer.

Keep this import light: client libraries (boto3, redis, tweepy, qrcode/PIL)
are imported inside the code paths that use them, never here.
"""
from chalice import Chalice, Rate, Response

from chalicelib import health, web
from chalicelib.cache import api as cache_api
from chalicelib.http import json_api, json_response
from chalicelib.leaderboard import api as leaderboard_api
from chalicelib.logs import configure_app_logging
from chalicelib.settings import get_settings

app = Chalice(app_name="pulse")
configure_app_logging(app.log, get_settings().log_level)


@app.route("/")
def index() -> Response:
    return web.html_response("index.html")


@app.route("/health")
@json_api
def health_check() -> Response:
    report = health.check_all()
    return json_response(report.to_body(), 200 if report.ok else 503)


@app.route("/leaderboard")
@json_api
def leaderboard_top() -> Response:
    return json_response(leaderboard_api.top(app.current_request.query_params))


@app.route("/leaderboard/{hashtag}")
@json_api
def leaderboard_tag(hashtag: str) -> Response:
    return json_response(leaderboard_api.one_tag(hashtag, app.current_request.query_params))


@app.schedule(Rate(get_settings().ingest_rate_minutes, unit=Rate.MINUTES),
              name="ingest_hashtags", description="Count the hashtags of new tweets")
def ingest_hashtags(event) -> dict:
    from chalicelib.leaderboard.ingest import run_scheduled_ingest

    # Stop between pages with a third of the time left; the next run resumes the range.
    margin_ms = event.context.get_remaining_time_in_millis() / 3
    result = run_scheduled_ingest(
        should_stop=lambda: event.context.get_remaining_time_in_millis() < margin_ms)
    app.log.info("ingest: %s", result.summary())
    return result.to_dict()


@app.route("/ui/leaderboard")
def leaderboard_page() -> Response:
    return web.html_response("leaderboard.html")


# --- cache ---
@app.route("/upstream/{name}")
@json_api
def upstream_get(name: str) -> Response:
    return cache_api.proxy(name)


@app.route("/upstream/{name}/{item}")
@json_api
def upstream_item(name: str, item: str) -> Response:
    return cache_api.proxy(name, item)


@app.route("/ui/cache")
def cache_page() -> Response:
    return web.html_response("cache.html")


# --- hotspots ---
@app.route("/clicks", methods=["POST"])
@json_api
def post_clicks() -> Response:
    from chalicelib.hotspots import api as hotspots_api

    return json_response(*hotspots_api.post_clicks(app.current_request.raw_body))


@app.route("/hotspots")
@json_api
def get_hotspots() -> Response:
    from chalicelib.hotspots import api as hotspots_api

    return json_response(hotspots_api.hotspots(app.current_request.query_params))


@app.on_kinesis_record(stream=get_settings().click_stream_name, batch_size=100,
                       starting_position="TRIM_HORIZON", name="consume_clicks")
def consume_clicks(event) -> dict:
    from chalicelib.hotspots.consumer import get_consumer

    result = get_consumer().consume(event.to_dict()["Records"])
    app.log.info("clicks: %s", result.to_dict())
    return result.to_dict()


@app.route("/ui/clicks")
def clicks_page() -> Response:
    return web.html_response("clicks.html")
