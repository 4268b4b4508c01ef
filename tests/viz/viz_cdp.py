"""A minimal Chrome DevTools Protocol client over --remote-debugging-pipe (standard library only).

Chromium reads commands from its file descriptor 3 and writes replies and events to 4, each a
JSON object followed by a NUL byte; no websocket, no chromedriver, no Selenium. Used by
test_viz_browser.py to load a page, read the DOM, collect console errors and take a screenshot.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import sys
import time

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)


#: Runs in the child: put the two pipe ends on descriptors 3 and 4, then become Chromium.
TRAMPOLINE = """
import os, sys
cmd, ev = os.dup(int(sys.argv[1])), os.dup(int(sys.argv[2]))
os.dup2(cmd, 3)
os.dup2(ev, 4)
for fd in {cmd, ev, int(sys.argv[1]), int(sys.argv[2])} - {3, 4}:
    os.close(fd)
os.set_inheritable(3, True)  # os.dup made them close-on-exec; dup2 onto itself keeps that
os.set_inheritable(4, True)
os.execv(sys.argv[3], sys.argv[3:])
"""


def find_chromium() -> str | None:
    """The Chromium binary (SLIDENET_CHROMIUM overrides), or None."""
    override = os.environ.get("SLIDENET_CHROMIUM")
    if override:
        return override
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """Headless Chromium with one page; ``errors`` collects the page's console errors."""

    def __init__(self, binary, user_data_dir, width=1200, height=1600, timeout=30.0):
        self.timeout = timeout
        cmd_r, self._cmd_w = os.pipe()  # we write commands, Chromium reads them on fd 3
        self._ev_r, ev_w = os.pipe()  # Chromium writes on fd 4, we read
        args = [
            binary,
            *FLAGS,
            f"--user-data-dir={user_data_dir}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", TRAMPOLINE, str(cmd_r), str(ev_w), *args],
            pass_fds=(cmd_r, ev_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(cmd_r)
        os.close(ev_w)
        self._buf = b""
        self._next_id = 0
        self.timeout = timeout
        self.events: list[dict] = []
        self.errors: list[str] = []
        try:
            target = self.call("Target.createTarget", url="about:blank")["targetId"]
            self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
                "sessionId"
            ]
            for domain in ("Page", "Runtime", "Log"):
                self.call(f"{domain}.enable", session=True)
            self.call(  # the page's viewport, whatever the window's decorations take
                "Emulation.setDeviceMetricsOverride",
                session=True,
                width=width,
                height=height,
                deviceScaleFactor=1,
                mobile=False,
            )
        except BaseException:
            self.close()
            raise

    # ----- protocol ---------------------------------------------------------------------------
    def _read_message(self, deadline) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self._ev_r], [], [], left)
            if ready:
                chunk = os.read(self._ev_r, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium exited (code {self.proc.poll()})")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        message = json.loads(raw)
        if "method" in message:
            self._note(message)
        return message

    def _note(self, event):
        self.events.append(event)
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            texts = [str(a.get("value", a.get("description", ""))) for a in params.get("args", [])]
            self.errors.append("console: " + " ".join(texts))
        elif method == "Runtime.exceptionThrown":
            self.errors.append("exception: " + json.dumps(params.get("exceptionDetails", {}))[:300])
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            self.errors.append(f"log ({params['entry'].get('source')}): {params['entry']['text']}")

    def call(self, method, session=False, **params):
        """Send one command and return its result (events that arrive meanwhile are kept)."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._cmd_w, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def wait_for(self, method, deadline):
        """Wait for an event of the page session named ``method``."""
        seen = len(self.events)
        while True:
            for event in self.events[seen:]:
                if event["method"] == method and event.get("sessionId") == self.session:
                    return event
            seen = len(self.events)
            self._read_message(deadline)

    # ----- page -------------------------------------------------------------------------------
    def open(self, url):
        """Navigate and wait for the load event (every image decoded or failed)."""
        self.errors.clear()
        deadline = time.monotonic() + self.timeout
        self.call("Page.navigate", session=True, url=url)
        self.wait_for("Page.loadEventFired", deadline)

    def evaluate(self, expression):
        result = self.call(
            "Runtime.evaluate", session=True, expression=expression, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluate: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self) -> bytes:
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        return base64.b64decode(data)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.call("Browser.close")
            except (RuntimeError, TimeoutError, OSError, KeyError):
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_w)
        os.close(self._ev_r)
