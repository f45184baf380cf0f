"""`chalice local` with its answers sent without Nagle's delay, and an unknown path a 404.

Chalice's dev server writes an answer's headers and its body in two writes on a
kept-alive connection; with Nagle's algorithm on, the body waits for the client's
delayed ACK of the headers (~40 ms on Linux), so every answer took 40 ms more than
the app did (a 1 ms cache HIT showed as ~45 ms on /ui/cache).  Turning Nagle off on
the handler's sockets (socketserver's own switch) sends the body at once.  Local
tooling only: in AWS, API Gateway and Lambda serve the app.

A path no route matches is API Gateway's MISSING_AUTHENTICATION_TOKEN, a 403
`{"message": "Missing Authentication Token"}` that Chalice's dev server copies.  The
stage's gateway responses (Terraform) answer it as a 404 in the app's error shape; this
server answers the same.

A route with `api_key_required` (the team's, when TEAM_API_KEY_REQUIRED is on) is
refused with a 403 unless `x-api-key` is PULSE_LOCAL_API_KEY, as API Gateway refuses a
request without the stage's key: so a stage that requires the key can be tried locally.

Query values are decoded keeping bytes that are not UTF-8 (as lone surrogates), so the
app refuses them by name, as it does a path's `%ED%A0%80`.

    python -m local.chalice_local local --stage local --port 8000 ...
"""
from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler

from chalice import local as chalice_local
from chalice.cli import main

chalice_local.ChaliceRequestHandler.disable_nagle_algorithm = True


class RouteNotFound(chalice_local.LocalGatewayException):
    CODE = 404


def not_found_body(method: str, path: str) -> bytes:
    """The gateway's answer to a path no route matches, in the app's error shape."""
    return json.dumps({"error": "NotFound",
                       "message": f"no route for {method} {path.split('?')[0][:200]}"}).encode()


def _answer_unknown_paths_404(handle_request):
    def handle(self, method, path, headers, body):
        try:
            return handle_request(self, method, path, headers, body)
        except chalice_local.ForbiddenError as exc:
            if b"Missing Authentication Token" not in (exc.body or b"") and \
                    b"Authorization header requires" not in (exc.body or b""):
                raise
            raise RouteNotFound({**exc.headers, "Content-Type": "application/json"},
                                not_found_body(method, path)) from None

    return handle


class ApiKeyRefused(chalice_local.LocalGatewayException):
    CODE = 403


def api_key_refusal(headers) -> ApiKeyRefused | None:
    """API Gateway's check of a route with `api_key_required`, locally: the request's
    `x-api-key` must be PULSE_LOCAL_API_KEY (none configured: no key passes), else a 403
    in the app's error shape, as the stage's gateway responses answer it."""
    import hmac
    import os

    expected = os.environ.get("PULSE_LOCAL_API_KEY", "")
    given = next((v for k, v in headers.items() if k.lower() == "x-api-key"), "")
    if expected and hmac.compare_digest(given.encode(), expected.encode()):
        return None
    body = {"error": "Forbidden",
            "message": "this route needs the team's API key in the x-api-key header"
            if not given else "the x-api-key header is not the team's API key"}
    return ApiKeyRefused({"Content-Type": "application/json", "Cache-Control": "no-store",
                          "X-Content-Type-Options": "nosniff"}, json.dumps(body).encode())


def _check_api_keys(handle_request):
    def handle(self, method, path, headers, body):
        try:
            route = self.event_converter._route_matcher.match_route(path).route
        except ValueError:  # no route: answered below
            return handle_request(self, method, path, headers, body)
        entry = self._app_object.routes.get(route, {}).get(method)
        if entry is not None and entry.api_key_required:
            refusal = api_key_refusal(headers)
            if refusal is not None:
                raise refusal
        return handle_request(self, method, path, headers, body)

    return handle


chalice_local.LocalGateway.handle_request = _check_api_keys(_answer_unknown_paths_404(
    chalice_local.LocalGateway.handle_request))


def _query_bytes_kept(match_route):
    """Query values decoded with `surrogateescape`, not `replace`: bytes that are not
    UTF-8 (`%ED%A0%80`, `%C0%AF`) reach the app as lone surrogates, which it refuses
    with a 400 naming the parameter, instead of as U+FFFD it cannot tell from text."""
    from urllib.parse import parse_qs, urlparse

    def match(self, url):
        result = match_route(self, url)
        query = parse_qs(urlparse(url).query, keep_blank_values=True,
                         errors="surrogateescape")
        return chalice_local.MatchResult(result.route, result.captured, query)

    return match


chalice_local.RouteMatcher.match_route = _query_bytes_kept(chalice_local.RouteMatcher.match_route)

def _handler_init_with_peer_address(self, request, client_address, server, app_object,
                                    config):
    self.local_gateway = chalice_local.LocalGateway(app_object, config)
    # an instance attribute over the class constant create_lambda_event reads
    self.local_gateway.event_converter.LOCAL_SOURCE_IP = client_address[0]
    BaseHTTPRequestHandler.__init__(self, request, client_address, server)


chalice_local.ChaliceRequestHandler.__init__ = _handler_init_with_peer_address

if __name__ == "__main__":
    sys.argv[0] = "chalice"
    sys.exit(main())
