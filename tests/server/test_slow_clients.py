"""Slow and oversized clients against the real uvicorn process: a trickled body is cut off
with a 408, an oversized one with a 413, and both connections are closed at once."""

from __future__ import annotations

import socket
import time


def raw_request(port: int, head: str, body: bytes = b"", wait: float = 10.0) -> tuple[bytes, float, bool]:
    """Send ``head`` and ``body``, then read until the server closes; returns (answer,
    seconds to the close, closed by the server)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        started, answer = time.monotonic(), b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except socket.timeout:
            return answer, time.monotonic() - started, False
        return answer, time.monotonic() - started, True


def test_a_trickled_body_is_cut_off_and_a_too_large_one_closed(start_server):
    server = start_server("--body-timeout", "1")
    boundary = "b"
    head = (f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 100000\r\n")
    answer, seconds, closed = raw_request(server.port, head, b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n")
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'{"error":"the request body took longer than 1 s to arrive"}' in answer
    assert closed and seconds < 5

    huge = head.replace("Content-Length: 100000", f"Content-Length: {10 ** 10}")
    answer, seconds, closed = raw_request(server.port, huge, b"x" * 1000)
    assert answer.startswith(b"HTTP/1.1 413") and b"connection: close" in answer.lower(), answer[:300]
    assert closed and seconds < 2  # closed without reading the 10 GB it announced

    idle = socket.create_connection(("127.0.0.1", server.port))  # keep-alive: closed after 5 s idle
    idle.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
    idle.settimeout(15)
    first = idle.recv(65536)
    started = time.monotonic()
    while idle.recv(65536):
        pass
    assert first.startswith(b"HTTP/1.1 200") and 3 < time.monotonic() - started < 10
    idle.close()
