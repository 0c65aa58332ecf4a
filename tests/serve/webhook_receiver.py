"""A provider's webhook endpoint for the tests: a real HTTP server on loopback that keeps every
delivery (headers with lower-case names, and the raw body) and answers with a chosen status."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any


class Receiver:
    """Answers `failing_status` to the first `failures` deliveries, then `status`."""

    def __init__(self, *, status: int = 204, failures: int = 0, failing_status: int = 500) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.failures_left = failures
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                failing = receiver.failures_left > 0
                receiver.failures_left -= 1
                self.send_response(failing_status if failing else status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    @property
    def bodies(self) -> list[Any]:
        return [json.loads(body) for _, body in self.received]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
