"""What the tests' HTTP servers share: a threaded server on 127.0.0.1 (a free port, loopback only)
that stops by itself after `lifetime` seconds, its handler class bound to the server object."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    """A port free on 127.0.0.1 now (for a server started in another process)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopbackServer:
    """Subclasses set `handler` (a BaseHTTPRequestHandler subclass) and `owner_attr`, the name under
    which the handler finds this object."""

    handler: type[BaseHTTPRequestHandler]
    owner_attr = "owner"

    def __init__(self, lifetime: float):
        self.lifetime = lifetime
        self._server: ThreadingHTTPServer | None = None
        self._timer: threading.Timer | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self._server.server_address[:2]

    def start(self):
        handler = type("Handler", (self.handler,), {self.owner_attr: self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name=type(self).__name__, daemon=True).start()
        self._timer = threading.Timer(self.lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._server is not None:
            threading.Thread(target=self._server.shutdown, daemon=True).start()
            self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
