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


chalice_local.LocalGateway.handle_request = _answer_unknown_paths_404(
    chalice_local.LocalGateway.handle_request)

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
