"""Local servers on 127.0.0.1 for the outbound client's tests, and a resolver that answers made-up
names: the tests never reach any address but loopback."""

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from unittest import mock

REAL_GETADDRINFO = socket.getaddrinfo


class Recorded:
    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method, self.path, self.headers, self.body = method, path, headers, body


# (status, headers, body) or a callable that writes the whole answer itself.
Answer = tuple[int, dict[str, str], bytes]


class LocalHTTP:
    """An HTTP server on 127.0.0.1 that records every request and answers ``answer(request)``."""

    def __init__(self, answer: Callable[[Recorded, BaseHTTPRequestHandler], Answer | None] | Answer = (200, {}, b"ok")):
        self.requests: list[Recorded] = []
        self.answer = answer
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorded = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                server.requests.append(recorded)
                answer = server.answer(recorded, self) if callable(server.answer) else server.answer
                if answer is None:
                    return  # the callable wrote the answer itself
                status, headers, content = answer
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = _any  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class RawTCP:
    """A port that is open but does not speak HTTP: it answers every connection with ``banner``."""

    def __init__(self, banner: bytes = b"SSH-2.0-OpenSSH_9.6\r\n") -> None:
        self.banner = banner
        self.connections = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            try:
                conn.sendall(self.banner)
                time.sleep(0.05)
            finally:
                conn.close()

    def close(self) -> None:
        self._stop = True
        self.sock.close()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


@contextmanager
def resolving(answers: dict[str, list[str] | Callable[[], list[str]]]) -> Iterator[dict[str, int]]:
    """``socket.getaddrinfo`` for made-up names: each maps to its addresses (or a callable giving
    them, to change the answer between lookups). Yields how often each name was looked up. Any
    other name is resolved for real (IP literals only, in these tests)."""
    lookups: dict[str, int] = {}

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name in answers:
            lookups[name] = lookups.get(name, 0) + 1
            entry = answers[name]
            addresses = entry() if callable(entry) else entry
            return [
                (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in addresses
            ]
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    with mock.patch("socket.getaddrinfo", side_effect=fake):
        yield lookups
