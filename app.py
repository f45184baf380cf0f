"""Pulse: the table of handlers.  Each parses, calls chalicelib, shapes the answer.

Keep this import light: client libraries (boto3, redis, tweepy, qrcode/PIL)
are imported inside the code paths that use them, never here.
"""
from functools import cache

from chalice import Chalice, Rate, Response

from chalicelib import health, ratelimit, telemetry, web
from chalicelib.http import (
    answer_head_where_get,
    json_api,
    json_response,
    one_error_shape,
    public_origin,
)
from chalicelib.leaderboard import api as leaderboard_api
from chalicelib.logs import configure_app_logging
from chalicelib.qr import api as qr_api
from chalicelib.ratelimit import limit
from chalicelib.settings import get_settings
from chalicelib.upstream import api as upstream_api

app = Chalice(app_name="pulse")
answer_head_where_get(app)  # every GET route answers HEAD too
configure_app_logging(app.log, get_settings().log_level)
app.register_middleware(telemetry.middleware, "all")  # JSON logs, EMF metrics
app.register_middleware(one_error_shape, "http")
# Every route's class (@limit below) is limited per client address (chalicelib/ratelimit.py);
# a read_only view (it only reads, cheaply) runs while its request is counted.
app.register_middleware(ratelimit.middleware_for(app), "http")


@app.route("/")
@limit("pages", read_only=True)
def index() -> Response:
    return web.html_response("index.html")


app.api.binary_types.extend(t for t in web.BINARY_TYPES if t not in app.api.binary_types)


@app.route("/ui/assets/{name}")
@limit("pages", read_only=True)
def page_asset(name: str) -> Response:
    return web.asset_response(name)


@app.route("/favicon.ico")
@limit("pages", read_only=True)
def favicon() -> Response:
    return web.asset_response("favicon.svg")


@app.route("/openapi.json")
@limit("public-read", read_only=True)
def openapi_document() -> Response:
    return json_response(api_document())


@cache
def api_document() -> dict:
    """The OpenAPI document (built once per container; do not mutate it): each feature's
    part, in the order of this table, assembled by chalicelib.openapi."""
    from chalicelib import openapi
    from chalicelib.hotspots import api as hotspots_api

    keyed = [(method, path) for path, entry in app.routes.items()
             for method, route in entry.items() if route.api_key_required]
    return openapi.document([leaderboard_api.openapi_part(), qr_api.openapi_part(),
                             upstream_api.openapi_part(), hotspots_api.openapi_part()], keyed)


# The team's routes (README "Who may do what"): outside the local stage API Gateway
# requires the team's API key (TEAM_API_KEY_REQUIRED).
TEAM_KEY = get_settings().team_api_key_required


@app.route("/health")
@limit("public-read")
@json_api
def health_check() -> Response:
    report = health.check_all()
    return json_response(report.to_public_body(), 200 if report.ok else 503)


@app.route("/health/details", api_key_required=TEAM_KEY)
@limit("team")
@json_api
def health_details() -> Response:
    report = health.check_all()
    return json_response(report.to_body(), 200 if report.ok else 503)


@app.route("/leaderboard")
@limit("public-read", read_only=True)
@json_api
def leaderboard_top() -> Response:
    request = app.current_request
    return leaderboard_api.answer(leaderboard_api.top(request.query_params), request.headers)


@app.route("/leaderboard/{hashtag}")
@limit("public-read", read_only=True)
@json_api
def leaderboard_tag(hashtag: str) -> Response:
    request = app.current_request
    return leaderboard_api.answer(leaderboard_api.one_tag(hashtag, request.query_params),
                                  request.headers)


@app.schedule(Rate(get_settings().ingest_rate_minutes, unit=Rate.MINUTES),
              name="ingest_hashtags", description="Count the hashtags of new tweets")
def ingest_hashtags(event) -> dict:
    from chalicelib.leaderboard.schedule import ingest_within

    results = ingest_within(event.context.get_remaining_time_in_millis)
    for board, result in results.items():
        app.log.info("ingest: board %s: %s", board, result.summary())
    return {board: result.to_dict() for board, result in results.items()}


@app.route("/ui/leaderboard")
@limit("pages", read_only=True)
def leaderboard_page() -> Response:
    return web.html_response("leaderboard.html")


# --- qr ---
app.api.binary_types.extend(t for t in qr_api.BINARY_TYPES if t not in app.api.binary_types)


@app.route("/qr", methods=["POST"], api_key_required=TEAM_KEY)
@limit("team")
@json_api
def qr_create() -> Response:
    request = app.current_request
    body, status = qr_api.create(request.raw_body, origin=public_origin(request))
    return json_response(body, status)


@app.route("/qr", methods=["GET"])
@limit("team")
@json_api
def qr_stats() -> Response:
    return json_response(qr_api.stats(app.current_request.query_params))


@app.route("/qr/{qr_id}", methods=["GET"])
@limit("team")
@json_api
def qr_image(qr_id: str) -> Response:
    return qr_api.image(qr_id, app.current_request.query_params)


# The cache table's DynamoDB stream (NEW_IMAGE) -> here -> qr.created on EVENT_BUS_NAME; a
# failed PutEvents raises, so the stream delivers the batch again (chalicelib.qr.events).
@app.on_dynamodb_record(stream_arn=get_settings().qr_table_stream_arn, batch_size=100,
                        starting_position="TRIM_HORIZON")
def qr_item_written(event) -> dict:
    from chalicelib.qr.events import publish_item_records
    from chalicelib.qr.wiring import get_publisher

    result = publish_item_records(event.to_dict()["Records"], get_publisher())
    app.log.info("qr items: %s", result)
    return result


# --- dynamic qr ---
@app.route("/r/{code}")
@limit("public-read")
def qr_scan(code: str) -> Response:
    return qr_api.scan(code, app.current_request)


@app.route("/qr/{qr_id}", methods=["PATCH"], api_key_required=TEAM_KEY)
@limit("team")
@json_api
def qr_change(qr_id: str) -> Response:
    return json_response(qr_api.change(qr_id, app.current_request.raw_body))


@app.route("/qr/{qr_id}", methods=["DELETE"], api_key_required=TEAM_KEY)
@limit("team")
@json_api
def qr_retire(qr_id: str) -> Response:
    return json_response(qr_api.retire(qr_id))


@app.route("/qr/{qr_id}/scans", api_key_required=TEAM_KEY)
@limit("team")
@json_api
def qr_scans(qr_id: str) -> Response:
    return json_response(qr_api.scans(qr_id, app.current_request.query_params))


# EventBridge rule (pattern qr.created on EVENT_BUS_NAME) -> SQS queue with a DLQ -> here.
@app.on_sqs_message(queue=get_settings().qr_events_queue, batch_size=10)
def qr_created(event) -> dict:
    result = qr_api.on_created_messages(record.body for record in event)
    app.log.info("qr.created: %s", result)
    return result


@app.route("/ui/qr")
@limit("pages", read_only=True)
def qr_page() -> Response:
    return web.html_response("qr.html")


# --- upstream (through the read-through cache) ---
@app.route("/upstream/{name}")
@limit("public-read")
@json_api
def upstream_get(name: str) -> Response:
    return upstream_api.proxy(name)


@app.route("/upstream/{name}/{item}")
@limit("public-read")
@json_api
def upstream_item(name: str, item: str) -> Response:
    return upstream_api.proxy(name, item)


@app.route("/ui/cache")
@limit("pages", read_only=True)
def cache_page() -> Response:
    return web.html_response("cache.html")


# --- hotspots ---
@app.route("/clicks", methods=["POST"])
@limit("public-write")
@json_api
def post_clicks() -> Response:
    from chalicelib.hotspots import api as hotspots_api

    return json_response(*hotspots_api.post_clicks(app.current_request.raw_body))


@app.route("/hotspots")
@limit("public-read")
@json_api
def get_hotspots() -> Response:
    from chalicelib.hotspots import api as hotspots_api

    return json_response(hotspots_api.hotspots(app.current_request.query_params))


@app.on_kinesis_record(stream=get_settings().click_stream_name, batch_size=100,
                       starting_position="TRIM_HORIZON", name="consume_clicks")
def consume_clicks(event) -> dict:
    from chalicelib.hotspots.wiring import get_consumer

    consumer = get_consumer(remaining_ms=event.context.get_remaining_time_in_millis)
    result = consumer.consume(event.to_dict()["Records"])
    app.log.info("clicks: %s", result.to_dict())
    return result.to_dict()


@app.route("/ui/clicks")
@limit("pages", read_only=True)
def clicks_page() -> Response:
    return web.html_response("clicks.html")
