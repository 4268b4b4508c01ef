"""Serving the app: uvicorn on a socket bound here (so a busy port is a one-line error), the URL
printed, the browser opened, Ctrl-C a clean stop.

Binds to 127.0.0.1 by default. Another address is used only when asked for, with a warning,
and the Host headers accepted then are that address, this machine's names and the loopback
names (see :func:`allowed_hosts`).
"""

from __future__ import annotations

import socket
import sys
import threading
import time
import webbrowser

from slidenet.explore.app import LOOPBACK

__all__ = ["allowed_hosts", "bind", "is_loopback", "serve"]

_WILDCARDS = ("0.0.0.0", "::", "")


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


def allowed_hosts(host: str) -> tuple[str, ...]:
    """The Host header names accepted for a server bound to ``host``."""
    names = {host, *LOOPBACK}
    if host in _WILDCARDS:  # any interface: the machine's own names and addresses
        for name in (socket.gethostname(), socket.getfqdn()):
            names.add(name)
            try:
                names.update(socket.gethostbyname_ex(name)[2])
            except OSError:
                pass
    return tuple(sorted(n for n in names if n))


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); port 0 picks a free one. OSError names the
    address when it is taken or not this machine's."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as err:
        sock.close()
        raise OSError(
            f"cannot listen on {host}:{port} ({err.strerror or err}); choose another --port "
            "(0 picks a free one)"
        ) from None
    sock.set_inheritable(True)
    return sock


def url_for(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if host in _WILDCARDS:
        host = "127.0.0.1"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve(app, host="127.0.0.1", port=8000, open_browser=True, out=None) -> None:
    """Serve ``app`` until Ctrl-C (or SIGTERM); prints the URL and opens it in the browser."""
    import uvicorn

    out = out or sys.stdout
    if not is_loopback(host):
        print(
            f"warning: listening on {host or 'every interface'}: other machines that can reach "
            "this one can use the page and run the model; use the default 127.0.0.1 to keep it "
            "local",
            file=sys.stderr,
            flush=True,
        )
    sock = bind(host, port)
    url = url_for(sock)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    print(f"slidenet explore: serving on {url} (Ctrl-C to stop)", file=out, flush=True)
    if open_browser:
        threading.Thread(target=_open_when_ready, args=(server, url), daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def _open_when_ready(server, url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    if server.started:
        webbrowser.open(url)
