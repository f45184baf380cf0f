"""Pulse: the table of handlers.  Each parses, calls chalicelib, shapes the answer.

Keep this import light: client libraries (boto3, redis, tweepy, qrcode/PIL)
are imported inside the code paths that use them, never here.
"""
from chalice import Chalice, Response

from chalicelib import health, web
from chalicelib.http import json_api, json_response

app = Chalice(app_name="pulse")


@app.route("/")
def index() -> Response:
    return web.html_response("index.html")


@app.route("/health")
@json_api
def health_check() -> Response:
    report = health.check_all()
    return json_response(report.to_body(), 200 if report.ok else 503)
