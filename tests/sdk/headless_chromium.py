"""A real browser for tests: headless Chromium driven over its DevTools pipe (stdlib only).

Chromium started with ``--remote-debugging-pipe`` reads DevTools commands (JSON, NUL-terminated)
on its file descriptor 3 and answers on 4; no port is opened, no driver or Python package is
needed. Only what the dashboard tests use: open a page, evaluate an expression, screenshot.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    """The Chromium executable on PATH (Debian: the ``chromium`` package), or None."""
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


class HeadlessChromium:
    """One headless Chromium with one page; a context manager that always ends the process."""

    def __init__(self, profile_dir: Path, *, width: int = 1100, height: int = 1000, timeout_s: float = 60.0,
                 startup_timeout_s: float = 180.0) -> None:
        exe = find_chromium()
        if exe is None:
            raise RuntimeError("no chromium on PATH (make system-deps installs it)")
        self.timeout_s = timeout_s
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Above 9, so that placing them on 3 and 4 in the child never overwrites one another.
        keep = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser_r, from_browser_w)]

        def on_3_and_4() -> None:
            os.dup2(keep[0], 3)
            os.dup2(keep[1], 4)

        self._proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars", "--no-first-run",
             "--disable-extensions", "--disable-background-networking", "--remote-debugging-pipe",
             f"--user-data-dir={profile_dir}", f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=on_3_and_4, pass_fds=(3, 4))  # noqa: PLW1509 - only dup2 runs before exec
        for fd in (to_browser_r, from_browser_w, *keep):
            os.close(fd)
        self._next_id = 0
        self._buffer = b""
        self._session: str | None = None
        # The first launch on a fresh machine builds font and profile caches first: on CI, under a
        # busy test run, it took over 30 s to answer its first command. Wait for that once, with
        # its own bound, so that the per-command bound stays tight.
        try:
            self._send("Browser.getVersion", {}, session=False, timeout_s=startup_timeout_s)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> HeadlessChromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._send("Browser.close", {}, session=False, wait=False)
                self._proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait(timeout=10)
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass

    # --- what tests use ----------------------------------------------------------------------
    def open(self, url: str) -> None:
        target = self._send("Target.createTarget", {"url": url}, session=False)["targetId"]
        self._session = self._send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                   session=False)["sessionId"]

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-able values only)."""
        result = self._send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} raised in the page: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float) -> Any:
        """Evaluate ``expression`` every 0.25 s until it is truthy; its value (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout_s
        value: Any = None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.25)
        raise AssertionError(f"{expression!r} still {value!r} after {timeout_s:g} s")

    def screenshot(self, path: Path) -> Path:
        data = self._send("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    # --- the pipe ----------------------------------------------------------------------------
    def _send(self, method: str, params: dict[str, Any], *, session: bool = True, wait: bool = True,
              timeout_s: float | None = None) -> Any:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        if not wait:
            return None
        bound_s = self.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + bound_s
        while True:
            try:
                reply = self._read(deadline)
            except TimeoutError as exc:
                raise TimeoutError(f"chromium did not answer {method} within {bound_s:g} s") from exc
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed its DevTools pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)  # type: ignore[no-any-return]
