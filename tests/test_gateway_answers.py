"""What the gateway itself answers, before any handler, is in the app's one error shape."""
from __future__ import annotations

import urllib.error
import urllib.request

import pytest


@pytest.mark.parametrize("method,path", [("GET", "/nope"), ("POST", "/qr/abc/def"),
                                         ("GET", "/ui/nope?x=1"), ("DELETE", "/")])
def test_an_unknown_path_is_a_json_404(live_server, method, path):
    import json

    req = urllib.request.Request(live_server + path, method=method)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    if path == "/":  # the path exists: the method is what is wrong
        assert err.value.code == 405
        return
    assert err.value.code == 404
    assert err.value.headers["Content-Type"].startswith("application/json")
    body = json.loads(err.value.read())
    assert body["error"] == "NotFound" and path.split("?")[0] in body["message"]
