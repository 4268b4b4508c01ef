"""The web app: the page, its static files and the JSON API, on Starlette.

Routes:

* ``GET /``: the page; ``GET /static/...``: its script and style (shipped in the package).
* ``GET /api/model``: the columns (name, class, kind, shape, inputs), class names, data set.
* ``POST /api/run``: body = image bytes (PNG, JPEG, ...; ``?invert=1`` for dark ink on light
  paper) or JSON ``{"dataset_index": i}`` -> run id, every column's output (quantised, see
  :mod:`slidenet.explore.session`), probabilities, prediction, notes.
* ``GET /api/unit?run=ID&layer=NAME&y=&x=&k=``: one unit's panel (see
  :mod:`slidenet.explore.units`).
* ``GET /api/dataset/{i}.png``: test image i of the data set, for the page's gallery.

Every response carries a Content-Security-Policy that allows only this server's own scripts,
styles and images (no network). Requests whose Host header names another host are refused
(DNS rebinding), uploads over 10 MB get 413, and every refusal is JSON ``{"error": "one line"}``
with a 4xx code; the server keeps serving. Nothing is written to disk.
"""

from __future__ import annotations

import json
from pathlib import Path

from slidenet.explore.inputs import MAX_UPLOAD_BYTES, InputError, png_bytes
from slidenet.explore.session import Explorer

__all__ = ["CSP", "LOOPBACK", "build_app"]

STATIC = Path(__file__).parent / "static"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]


def _hostname(host: str) -> str:
    """'127.0.0.1:8000' -> '127.0.0.1'; '[::1]:8000' -> '::1'; lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class GuardMiddleware:
    """Pure ASGI: refuse foreign Host headers (400) and add the security headers everywhere."""

    def __init__(self, app, allowed_hosts):
        self.app = app
        self.allowed = {h.lower().strip("[]") for h in allowed_hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        host = _hostname(headers.get(b"host", b"").decode("latin-1"))
        if host not in self.allowed:
            from starlette.responses import JSONResponse

            message = (
                f"refused: Host {host!r} is not this server's address "
                f"({', '.join(sorted(self.allowed))}); DNS rebinding protection"
            )
            response = JSONResponse({"error": message}, status_code=400)
            return await self._secure(response)(scope, receive, send)

        async def send_secure(message):
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in HEADERS if k not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        return await self.app(scope, receive, send_secure)

    @staticmethod
    def _secure(response):
        for key, value in HEADERS:
            response.headers[key.decode()] = value.decode()
        return response


def _error(message: str, status: int):
    from starlette.responses import JSONResponse

    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status)


async def _body(request) -> bytes:
    """The request body, refused with 413 past MAX_UPLOAD_BYTES (announced or streamed)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_UPLOAD_BYTES:
        raise InputError(
            f"the upload is {int(length) / 1e6:.1f} MB; the limit is "
            f"{MAX_UPLOAD_BYTES // (1024 * 1024)} MB",
            413,
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_UPLOAD_BYTES:
            raise InputError(
                f"the upload is over the limit of {MAX_UPLOAD_BYTES // (1024 * 1024)} MB", 413
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _int(request, name: str, required: bool = True):
    text = request.query_params.get(name)
    if text is None or text == "":
        if required:
            raise InputError(f"missing query parameter {name!r}")
        return None
    try:
        return int(text)
    except ValueError:
        raise InputError(f"{name} must be an integer, got {text!r}") from None


def build_app(explorer: Explorer, allowed_hosts=LOOPBACK):
    """The Starlette app serving ``explorer``; ``app.state.explorer`` is it."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    page = (STATIC / "index.html").read_text(encoding="utf-8")

    def guarded(handler):
        async def endpoint(request):
            try:
                return await handler(request)
            except InputError as err:
                return _error(str(err), err.status)
            except ValueError as err:  # a model-side check, e.g. a shape the model refuses
                return _error(str(err), 400)

        return endpoint

    async def index(request):
        return HTMLResponse(page)

    async def model_info(request):
        return JSONResponse(explorer.info())

    async def run(request):
        invert = request.query_params.get("invert", "") in ("1", "true", "yes")
        body = await _body(request)
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                payload = json.loads(body)
            except ValueError:
                raise InputError("the body is not valid JSON") from None
            if not isinstance(payload, dict) or "dataset_index" not in payload:
                raise InputError('send {"dataset_index": i} as JSON, or an image as the body')
            result = await run_in_threadpool(explorer.run_index, payload["dataset_index"], invert)
        else:
            result = await run_in_threadpool(explorer.run_image, body, invert)
        return JSONResponse(result, headers={"server-timing": f"run;dur={result['server_ms']}"})

    async def unit(request):
        run_id = request.query_params.get("run") or ""
        layer = request.query_params.get("layer") or ""
        if not run_id or not layer:
            raise InputError("give run=ID and layer=NAME (and y, x, k)")
        y, x = _int(request, "y", False), _int(request, "x", False)
        k = _int(request, "k", False)
        result = await run_in_threadpool(explorer.unit, run_id, layer, y, x, k)
        return JSONResponse(result)

    async def dataset_image(request):
        if explorer.data is None:
            raise InputError("no data set is loaded; start explore with --dataset NAME", 404)
        try:
            index = int(request.path_params["index"])
        except ValueError:
            raise InputError("the image index must be an integer") from None
        image, _ = explorer.data.image(index)
        data = await run_in_threadpool(png_bytes, image)
        return Response(data, media_type="image/png")

    routes = [
        Route("/", index),
        Route("/api/model", guarded(model_info)),
        Route("/api/run", guarded(run), methods=["POST"]),
        Route("/api/unit", guarded(unit)),
        Route("/api/dataset/{index}.png", guarded(dataset_image)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]

    async def http_error(request, exc):  # 404 / 405 of the router and the static files
        return _error(exc.detail, exc.status_code)

    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    app.state.explorer = explorer
    app.add_middleware(GuardMiddleware, allowed_hosts=allowed_hosts)
    return app
