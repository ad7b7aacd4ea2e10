"""An HTTPS front for the test Orthanc, as a hospital puts nginx or an auth gateway before one:
Debian's Orthanc 1.10.1 crashes (SIGSEGV) on its own HTTPS, and has no bearer-token login. TLS
is terminated here; a request with the right bearer token is passed on to Orthanc's plain HTTP
port with Orthanc's own login, any other request as it came (so Orthanc judges it)."""

from __future__ import annotations

import http.client
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_HOP = {"connection", "keep-alive", "transfer-encoding", "host"}


def serve(
    port: int, backend_port: int, cert: str, key: str, token: str, basic: str
) -> ThreadingHTTPServer:
    """``token``: the bearer token accepted; ``basic``: the Authorization header it becomes."""

    class Forward(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            if headers.get("Authorization") == f"Bearer {token}":
                headers["Authorization"] = basic
            backend = http.client.HTTPConnection("127.0.0.1", backend_port, timeout=60)
            backend.request(self.command, self.path, body=body, headers=headers)
            answer = backend.getresponse()
            data = answer.read()
            self.send_response(answer.status, answer.reason)
            for name, value in answer.getheaders():
                if name.lower() not in _HOP | {"content-length"}:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            backend.close()

        do_GET = do_POST = do_DELETE = do_PUT = _forward  # noqa: N815

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Forward)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
