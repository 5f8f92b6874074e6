"""The dashboard's web server: the static page and a Server-Sent Events feed, from the stdlib.

A :class:`http.server.ThreadingHTTPServer` on a daemon thread (no web framework on the edge
install). It binds to loopback unless told otherwise (:func:`parse_bind`), serves only the files
shipped in ``static/`` (no directory listing, no path from the request touches the disk), on
loopback answers only requests addressed to a loopback name (no DNS rebinding), and holds at
most :data:`MAX_CLIENTS` event connections at once.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from emotionkd.firmware_bridge.errors import ConfigError, TransportError
from emotionkd.sdk.dashboard.hub import DashboardHub

DEFAULT_BIND = "127.0.0.1:8765"
#: event connections served at once (each holds a thread); more get 503
MAX_CLIENTS = 8
#: seconds between keep-alive comments on an idle event connection
KEEPALIVE_S = 10.0

#: the files the page is made of: URL path -> (file under static/, content type)
STATIC_FILES: dict[str, tuple[str, str]] = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
    "/vendor/uPlot.iife.min.js": ("vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
    "/vendor/uPlot.min.css": ("vendor/uPlot.min.css", "text/css; charset=utf-8"),
    "/vendor/uPlot.LICENSE": ("vendor/uPlot.LICENSE", "text/plain; charset=utf-8"),
}


def parse_bind(bind: str, *, allow_remote: bool = False) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port); a host other than loopback needs ``allow_remote``.

    Raises:
        ConfigError: malformed, a port outside 0-65535, or a non-loopback host without leave.
    """
    host, sep, port_text = bind.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(f"--bind {bind!r} is not HOST:PORT (e.g. {DEFAULT_BIND})")
    if not allow_remote and not _is_loopback(host):
        raise ConfigError(f"--bind {bind!r} would serve the dashboard beyond this machine; "
                          "add --allow-remote if you mean it (anyone who can reach the port sees the stream)")
    return host, int(port_text)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class DashboardServer:
    """Serves ``hub`` on ``host:port`` from a background thread (``port`` 0: any free port).

    Use as a context manager, or ``start()`` / ``stop()``; :attr:`url` is where to point a browser.
    """

    def __init__(self, hub: DashboardHub, host: str = "127.0.0.1", port: int = 8765) -> None:
        self.hub = hub
        self.loopback = _is_loopback(host)
        self._clients = threading.BoundedSemaphore(MAX_CLIENTS)
        handler = type("Handler", (_Handler,), {"dashboard": self})
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_class = type("Server", (ThreadingHTTPServer,), {"address_family": family, "daemon_threads": True})
        try:
            self._httpd = server_class((host, port), handler)
        except OSError as exc:
            raise TransportError(f"cannot serve the dashboard on {host}:{port}: {exc.strerror or exc} "
                                 "(choose another with --bind HOST:PORT)") from exc
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="emotionkd-dashboard", daemon=True)
        bound_port = self._httpd.server_address[1]
        #: Host headers a loopback server answers (a page elsewhere that rebinds its own name to
        #: 127.0.0.1 sends its name, and is refused: DNS rebinding)
        self.allowed_hosts = {f"{name}:{bound_port}" for name in ("127.0.0.1", "localhost", "[::1]")}

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else str(host)
        return f"http://{shown}:{port}/"

    def start(self) -> DashboardServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.hub.close()  # event connections see the end and return
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> DashboardServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    dashboard: DashboardServer
    server_version = "emotionkd-dashboard"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass  # library code never prints; the page and the CLI say what matters

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        path = self.path.split("?", 1)[0]
        if self.dashboard.loopback and (self.headers.get("Host") or "").lower() not in self.dashboard.allowed_hosts:
            self._send(HTTPStatus.MISDIRECTED_REQUEST, "text/plain; charset=utf-8",
                       b"this dashboard answers only to 127.0.0.1, localhost or [::1] with its port\n")
        elif path == "/events":
            self._events()
        elif path == "/snapshot":
            _, snapshot = self.dashboard.hub.snapshot()
            self._send(HTTPStatus.OK, "application/json", json.dumps(snapshot, allow_nan=False).encode())
        elif path in STATIC_FILES:
            name, content_type = STATIC_FILES[path]
            body = resources.files("emotionkd.sdk.dashboard").joinpath("static", name).read_bytes()
            self._send(HTTPStatus.OK, content_type, body)
        else:
            self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n")

    def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _events(self) -> None:
        """The snapshot as the first event, then every event after it, until the stream ends."""
        if not self.dashboard._clients.acquire(blocking=False):
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, "text/plain; charset=utf-8",
                       f"at most {MAX_CLIENTS} dashboard pages at once\n".encode())
            return
        try:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            hub = self.dashboard.hub
            seq, snapshot = hub.snapshot()
            self.wfile.write(f"event: snapshot\ndata: {json.dumps(snapshot, allow_nan=False)}\n\n".encode())
            self.wfile.flush()
            closed = snapshot["ended"]
            while not closed:
                events, closed = hub.events_after(seq, KEEPALIVE_S)
                self.wfile.write(b"".join(e.encode() for e in events) or b": keep-alive\n\n")
                self.wfile.flush()
                if events:
                    seq = events[-1].seq
        except (BrokenPipeError, ConnectionResetError):
            pass  # the page was closed
        finally:
            self.dashboard._clients.release()


__all__ = ["DEFAULT_BIND", "MAX_CLIENTS", "STATIC_FILES", "DashboardServer", "parse_bind"]
