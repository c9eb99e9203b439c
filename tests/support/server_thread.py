"""A real ASGI app served by uvicorn on a loopback socket in a background thread, for tests:
started and waited for, stopped (the lifespan closes the app's resources). The dashboard's
and the webhook's test servers (tests/support/dashboard.py, webhook_server.py) both run so."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn


def bind_loopback(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A bound socket (port 0: a free one); the server listens on it once started."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def serve_in_thread(
    app: Any, sock: socket.socket, name: str, startup_timeout: float, **config: Any
) -> tuple[uvicorn.Server, threading.Thread]:
    """Serve ``app`` on ``sock`` in a daemon thread; return once it accepts requests (raise
    ``RuntimeError`` when it does not within ``startup_timeout``). ``config``: more
    ``uvicorn.Config`` options."""
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", **config)
    )
    port = sock.getsockname()[1]
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"{name}-{port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(5)
            sock.close()
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.01)
    return server, thread


class ServerThread:
    """``stop()`` and ``with`` for a server started by ``serve_in_thread`` (the dataclasses
    using it hold ``_server`` and ``_thread``)."""

    _server: uvicorn.Server
    _thread: threading.Thread

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)

    def __enter__(self) -> ServerThread:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
