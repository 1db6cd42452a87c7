"""Slow and oversized clients against the real uvicorn process: a trickled body is cut off
with a 408, an oversized one with a 413, and both connections are closed at once."""

from __future__ import annotations

import socket
import time

import pytest


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


@pytest.mark.slow  # a server start plus a 5 s keep-alive wait: about 15-17 s here
def test_a_trickled_body_is_cut_off_and_a_too_large_one_closed(start_server):
    server = start_server("--body-timeout", "1", "--max-upload-mb", "0.05")  # a body cap of 0.36 MB
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

    # a streamed (chunked) body past the cap: the 413 comes mid-stream and the server stops
    # reading (the connection is closed) instead of draining what the client keeps sending
    chunked = (f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
               f"Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n")
    part = b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\n"
    sent, answer = 0, b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(chunked.encode() + f"{len(part):x}\r\n".encode() + part + b"\r\n")
        block = b"\0" * 65536
        try:
            while sent < 1 << 30:  # up to 1 GB, if the server kept reading
                sock.sendall(f"{len(block):x}\r\n".encode() + block + b"\r\n")
                sent += len(block)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    assert sent < 1 << 30, "the server read the whole streamed body"
    if answer:  # (a reset may have eaten it; the refusal itself is checked in test_api)
        assert answer.startswith(b"HTTP/1.1 413") and b"connection: close" in answer.lower(), answer[:300]

    idle = socket.create_connection(("127.0.0.1", server.port))  # keep-alive: closed after 5 s idle
    idle.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
    idle.settimeout(15)
    first = idle.recv(65536)
    started = time.monotonic()
    while idle.recv(65536):
        pass
    assert first.startswith(b"HTTP/1.1 200") and 3 < time.monotonic() - started < 10
    idle.close()
