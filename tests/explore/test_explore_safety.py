"""Safe by default: bad requests get a 4xx with one line and the server keeps serving; foreign
Host headers are refused; 200 concurrent requests on a real server all come back right."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from explore_helpers import bomb_png, digits, digits_cnn, layer_outputs, live_server, png

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

from slidenet.explore import create_app  # noqa: E402
from slidenet.explore.app import CSP  # noqa: E402
from slidenet.explore.inputs import MAX_UPLOAD_BYTES  # noqa: E402

N_DATA = 50
NOISE = png(np.random.default_rng(0).uniform(size=(64, 64)))


@pytest.fixture(scope="module")
def app():
    x, y = digits()
    return create_app(digits_cnn(), dataset=(x[:N_DATA], y[:N_DATA]))


@pytest.fixture(scope="module")
def client(app):
    return TestClient(app, base_url="http://127.0.0.1")


def good(client):
    reply = client.post("/api/run", json={"dataset_index": 1})
    assert reply.status_code == 200, reply.text
    return reply.json()


def too_big_stream():
    chunk = b"\0" * (1 << 20)
    for _ in range(MAX_UPLOAD_BYTES // len(chunk) + 1):
        yield chunk


BAD = {
    "over 10 MB": (413, "limit is 10 MB", {"content": b"\x89PNG" + b"\0" * MAX_UPLOAD_BYTES}),
    "over 10 MB, streamed": (413, "over the limit of 10 MB", {"content": "stream"}),
    "not an image": (400, "not an image", {"content": b"GIF89a? no, just text"}),
    "empty body": (400, "no image", {"content": b""}),
    "decompression bomb": (413, "64,000,000 pixels", {"content": bomb_png(8000, 8000)}),
    "bomb header": (413, "decompression bomb", {"content": bomb_png(100_000, 100_000, rows=1)}),
    "truncated PNG": (400, "could not be decoded", {"content": NOISE[: len(NOISE) // 2]}),
    "index out of range": (
        400,
        "out of range: the test split",
        {"json": {"dataset_index": N_DATA}},
    ),
    "negative index": (400, "out of range", {"json": {"dataset_index": -1}}),
    "index not an int": (400, "must be an integer", {"json": {"dataset_index": "3"}}),
    "JSON without index": (400, "dataset_index", {"json": {"index": 3}}),
    "broken JSON": (
        400,
        "not valid JSON",
        {"content": b"{", "headers": {"content-type": "application/json"}},
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_gets_a_4xx_with_one_line_and_the_next_request_works(client, case):
    status, words, kwargs = BAD[case]
    if kwargs.get("content") == "stream":
        kwargs = {"content": too_big_stream()}
    reply = client.post("/api/run", **kwargs)
    assert reply.status_code == status, reply.text
    message = reply.json()["error"]
    assert words in message and "\n" not in message and len(message) < 300
    assert reply.headers["content-security-policy"] == CSP
    good(client)


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"layer": "conv2d"}, 400, "give run=ID and layer=NAME"),
        ({"run": "RUN", "layer": "nope", "k": 0}, 404, "no layer named 'nope'"),
        ({"run": "RUN", "layer": "CONV", "y": 28, "x": 0, "k": 0}, 400, "y=28 is out of range"),
        ({"run": "RUN", "layer": "CONV", "y": 0, "x": 0, "k": 6}, 400, "k=6 is out of range"),
        ({"run": "RUN", "layer": "CONV", "y": "a", "x": 0, "k": 0}, 400, "y must be an integer"),
        ({"run": "RUN", "layer": "CONV", "k": 0}, 400, "give y, x and k"),
        ({"run": "RUN", "layer": "DENSE", "k": 32}, 400, "k=32 is out of range"),
        ({"run": "0123", "layer": "CONV", "y": 0, "x": 0, "k": 0}, 404, "not in the cache"),
    ],
)
def test_bad_unit_queries_get_a_4xx(client, params, status, words):
    model = digits_cnn()
    names = {"RUN": good(client)["run"], "CONV": model.layers[0].name}
    names["DENSE"] = model.layers[5].name
    params = {k: names.get(v, v) if isinstance(v, str) else v for k, v in params.items()}
    reply = client.get("/api/unit", params=params)
    assert reply.status_code == status and words in reply.json()["error"], reply.text
    good(client)


@pytest.mark.parametrize("host", ["evil.example:8000", "192.168.1.9", "127.0.0.1.evil.example"])
def test_foreign_host_headers_are_refused(client, host):
    """DNS rebinding: a page of another site, resolved to 127.0.0.1, sends its own Host."""
    for path in ("/", "/api/model", "/static/explore.js"):
        reply = client.get(path, headers={"host": host})
        assert reply.status_code == 400 and "DNS rebinding" in reply.json()["error"]
    reply = client.post("/api/run", json={"dataset_index": 0}, headers={"host": host})
    assert reply.status_code == 400
    for ok in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "LOCALHOST"):
        assert client.get("/api/model", headers={"host": ok}).status_code == 200


def test_the_page_loads_nothing_from_elsewhere(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-security-policy"] == CSP
    assert "default-src 'none'" in CSP and "script-src 'self'" in CSP
    for name in ("explore.js", "explore.css"):
        static = client.get(f"/static/{name}")
        assert static.status_code == 200 and static.headers["content-security-policy"] == CSP
        text = static.text
        assert "http://" not in text and "https://" not in text and "@import" not in text
    assert "http" not in page.text.replace('"/static/', "")
    assert client.get("/static/../app.py").status_code == 404
    for path, status in (("/api/nope", 404), ("/static/nope.js", 404)):
        reply = client.get(path)
        assert reply.status_code == status and reply.json()["error"] == "Not Found"
    reply = client.get("/api/run")
    assert reply.status_code == 405 and reply.json()["error"] == "Method Not Allowed"


def test_dataset_thumbnails(client):
    reply = client.get("/api/dataset/3.png")
    assert reply.status_code == 200 and reply.headers["content-type"] == "image/png"
    assert client.get(f"/api/dataset/{N_DATA}.png").status_code == 400
    assert client.get("/api/dataset/x.png").status_code == 400


def test_the_server_writes_no_files(client, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    good(client)
    client.post("/api/run", content=png(np.ones((40, 30))))
    client.post("/api/run", content=bomb_png(8000, 8000))
    assert os.listdir(tmp_path) == []


def _fetch(base, path, body=None, headers=None):
    request = urllib.request.Request(base + path, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_200_concurrent_requests_on_a_real_server(app):
    """Runs and units from 16 threads at once: every answer equals the one-at-a-time answer
    (the layers' per-call caches are never shared between two passes)."""
    model = digits_cnn()
    x, _ = digits()
    conv = model.layers[2].name
    images = x[:N_DATA, :, :, None] / np.float32(255)
    expected = model.predict(images)
    maps = [layer_outputs(model, image)[conv] for image in images[:10]]

    def task(i):
        index = i % N_DATA
        if i % 4 == 3:  # an uploaded PNG, the page's drawing path
            status, res = _fetch(base, "/api/run", png(x[index] / 255.0))
            return status == 200 and res["predicted"] == int(np.argmax(expected[index]))
        body = json.dumps({"dataset_index": index}).encode()
        status, res = _fetch(base, "/api/run", body, {"Content-Type": "application/json"})
        if status != 200 or res["probabilities"] != pytest.approx(expected[index], abs=1e-5):
            return False
        if index >= 10:
            return True
        query = f"/api/unit?run={res['run']}&layer={conv}&y={i % 10}&x=3&k={i % 12}"
        status, unit = _fetch(base, query)
        want = float(maps[index][i % 10, 3, i % 12])
        return status == 200 and unit["activated"] == pytest.approx(want, rel=1e-5, abs=1e-6)

    with live_server(app) as base, ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(task, range(200)))
        assert _fetch(base, "/api/model")[0] == 200
    assert all(results), [i for i, ok in enumerate(results) if not ok]
