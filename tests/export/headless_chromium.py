"""Headless Chromium driven over the DevTools protocol on a pipe: standard library only.

    with HeadlessChromium() as browser:
        browser.navigate("http://127.0.0.1:8000/index.html")
        title = browser.evaluate("document.title")
        png = browser.screenshot()

Chromium started with --remote-debugging-pipe reads protocol commands (JSON, each ended by a
NUL byte) from its file descriptor 3 and writes replies and events to descriptor 4; a reader
thread collects them. No websocket client, no Selenium, no Node.js.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from typing import Any, Sequence

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
COMMAND_TIMEOUT_S = 60.0


def find_chromium() -> str | None:
    """The path of a Chromium (or Chrome) binary on PATH, or None."""
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


class ChromiumError(RuntimeError):
    """A protocol error, a page exception, or Chromium gone."""


class HeadlessChromium:
    """One headless Chromium with one page (a fresh profile in a temporary folder)."""

    def __init__(self, binary: str | None = None, width: int = 1000, height: int = 800, flags: Sequence[str] = ()):
        self.binary = binary or find_chromium()
        self.flags = list(flags)
        if self.binary is None:
            raise FileNotFoundError(f"no Chromium on PATH (tried {', '.join(CANDIDATES)})")
        self.size = (width, height)
        self._next_id = 0
        self._replies: dict[int, queue.Queue] = {}
        self._events: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self.session = None
        self.console: list[str] = []
        self.requests: list[str] = []  # URLs the page requested (after `log_requests`)

    # ------------------------------------------------------------------ process
    def __enter__(self) -> "HeadlessChromium":
        self._profile = tempfile.mkdtemp(prefix="jointvae-chromium-")
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        args = [
            self.binary, "--headless", "--remote-debugging-pipe", f"--user-data-dir={self._profile}",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
            "--disable-background-networking", "--disable-component-update", "--mute-audio",
            f"--window-size={self.size[0]},{self.size[1]}",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
        args += self.flags
        args.append("about:blank")  # not the new-tab page, which loads chrome:// resources
        # The pipes become the browser's descriptors 3 (commands) and 4 (replies) through the shell.
        self._process = subprocess.Popen(
            ["sh", "-c", 'exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>&2', *args],
            stdin=to_browser_read, stdout=from_browser_write, stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self._attach()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self._process.poll() is None:
                try:
                    self.send("Browser.close", timeout=10)
                except ChromiumError:
                    pass
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()  # only the browser this object started
                self._process.wait()
        finally:
            for fd in (self._to_browser, self._from_browser):
                try:
                    os.close(fd)
                except OSError:
                    pass
            shutil.rmtree(self._profile, ignore_errors=True)

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._from_browser, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                if "id" in message:
                    with self._lock:
                        box = self._replies.get(message["id"])
                    if box is not None:
                        box.put(message)
                else:
                    self._on_event(message)
        with self._lock:
            for box in self._replies.values():
                box.put({"error": {"message": "Chromium exited"}})

    def _on_event(self, message: dict[str, Any]) -> None:
        if message.get("method") == "Runtime.consoleAPICalled":
            args = message["params"].get("args", [])
            self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
        elif message.get("method") == "Network.requestWillBeSent":
            self.requests.append(message["params"]["request"]["url"])
        self._events.put(message)

    # ------------------------------------------------------------------ protocol
    def send(self, method: str, params: dict[str, Any] | None = None, session: bool = False,
             timeout: float = COMMAND_TIMEOUT_S) -> dict[str, Any]:
        """Sends one command (to the page's session with `session`) and returns its result."""
        with self._lock:
            self._next_id += 1
            command_id = self._next_id
            box = self._replies[command_id] = queue.Queue()
        message = {"id": command_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        try:
            os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        except OSError as error:
            raise ChromiumError(f"{method}: Chromium is gone ({error})") from None
        try:
            reply = box.get(timeout=timeout)
        except queue.Empty:
            raise ChromiumError(f"{method}: no reply in {timeout} s") from None
        finally:
            with self._lock:
                self._replies.pop(command_id, None)
        if "error" in reply:
            raise ChromiumError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def wait_event(self, method: str, timeout: float = COMMAND_TIMEOUT_S) -> dict[str, Any]:
        """The parameters of the next event named `method` (others are dropped)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChromiumError(f"no {method} event in {timeout} s")
            try:
                event = self._events.get(timeout=remaining)
            except queue.Empty:
                continue
            if event.get("method") == method:
                return event.get("params", {})

    def _attach(self) -> None:
        targets = self.send("Target.getTargets")["targetInfos"]
        pages = [t for t in targets if t["type"] == "page"]
        target = pages[0]["targetId"] if pages else self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Page.enable", session=True)
        self.send("Runtime.enable", session=True)

    # ------------------------------------------------------------------ the page
    def log_requests(self) -> None:
        """From now on, the URL of every request the page makes is appended to `requests`."""
        self.send("Network.enable", session=True)

    def add_init_script(self, source: str) -> None:
        """Runs JavaScript `source` in every document this page loads from now on, before its own scripts."""
        self.send("Page.addScriptToEvaluateOnNewDocument", {"source": source}, session=True)

    def navigate(self, url: str, timeout: float = COMMAND_TIMEOUT_S) -> None:
        """Loads `url` and waits for its load event."""
        result = self.send("Page.navigate", {"url": url}, session=True)
        if result.get("errorText"):
            raise ChromiumError(f"cannot load {url}: {result['errorText']}")
        self.wait_event("Page.loadEventFired", timeout)

    def evaluate(self, expression: str, timeout: float = COMMAND_TIMEOUT_S) -> Any:
        """The JSON value of a JavaScript expression in the page, awaited if it is a promise."""
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, session=True, timeout=timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise ChromiumError(f"{expression[:60]}: {details.get('exception', {}).get('description') or details}")
        return result["result"].get("value")

    def mouse(self, kind: str, x: float, y: float, buttons: int = 1) -> None:
        """A real mouse event (mousePressed, mouseMoved, mouseReleased) at page coordinates x, y."""
        params = {"type": kind, "x": x, "y": y, "button": "left", "buttons": buttons}
        if kind != "mouseMoved":
            params["clickCount"] = 1
        self.send("Input.dispatchMouseEvent", params, session=True)

    def screenshot(self) -> bytes:
        """A PNG of the page's viewport."""
        return base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"}, session=True)["data"])
