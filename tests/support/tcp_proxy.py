"""A TCP proxy on loopback that can cut every connection and refuse new ones (an outage of
whatever is behind it) and then come back on the same port."""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit


class TcpProxy:
    """``target``: a TCP address, or the path of a Unix socket file."""

    def __init__(self, target: tuple[str, int] | str) -> None:
        self.target = target
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = int(probe.getsockname()[1])
        probe.close()
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def outage(self) -> None:
        """Close the listening socket and every proxied connection."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def close(self) -> None:
        self.outage()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = self._connect()
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _connect(self) -> socket.socket:
        if isinstance(self.target, tuple):
            return socket.create_connection(self.target, timeout=5)
        unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        unix.settimeout(5)
        unix.connect(self.target)
        return unix

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


def proxy_database(db_url: str) -> tuple[TcpProxy, str]:
    """A proxy in front of the database of ``db_url``, and the URL that goes through it. The
    server is reached at its TCP address, or over its Unix socket when the URL names one
    (``?host=<socket dir>``: the private cluster when no server answers on 127.0.0.1:5432)."""
    parts = urlsplit(db_url)
    query = parse_qs(parts.query)
    socket_dir = query.pop("host", [""])[0]
    target: tuple[str, int] | str = (
        f"{socket_dir}/.s.PGSQL.{parts.port or 5432}"
        if socket_dir
        else (parts.hostname or "127.0.0.1", parts.port or 5432)
    )
    proxy = TcpProxy(target)
    user = f"{parts.username}:{parts.password}@" if parts.username and parts.password else ""
    user = user or (f"{parts.username}@" if parts.username else "")
    url = urlunsplit(
        parts._replace(netloc=f"{user}127.0.0.1:{proxy.port}", query=urlencode(query, doseq=True))
    )
    return proxy, url
