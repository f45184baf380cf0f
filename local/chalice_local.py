"""`chalice local` with its answers sent without Nagle's delay.

Chalice's dev server writes an answer's headers and its body in two writes on a
kept-alive connection; with Nagle's algorithm on, the body waits for the client's
delayed ACK of the headers (~40 ms on Linux), so every answer took 40 ms more than
the app did (a 1 ms cache HIT showed as ~45 ms on /ui/cache).  Turning Nagle off on
the handler's sockets (socketserver's own switch) sends the body at once.  Local
tooling only: in AWS, API Gateway and Lambda serve the app.

    python -m local.chalice_local local --stage local --port 8000 ...
"""
from __future__ import annotations

import sys

from chalice import local as chalice_local
from chalice.cli import main

chalice_local.ChaliceRequestHandler.disable_nagle_algorithm = True

if __name__ == "__main__":
    sys.argv[0] = "chalice"
    sys.exit(main())
