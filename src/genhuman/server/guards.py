"""Middleware that guards every request before a route sees it.

- ``security_headers``: CSP (the page and /docs load only this server's files), no
  framing, nosniff, no referrer.
- ``refuse_foreign``: DNS rebinding (a foreign Host) and cross-site state changes (CSRF).
- ``refuse_early``: what can be refused before a byte of the body is read: a declared
  length over the cap (413) or over the free disk (507), a client over its rate (429),
  no free slot in the validation pool (503), a full queue (429). These answers close the
  connection, so the body is never read.
- :class:`BodyDeadline`: a client that trickles its body is cut off (408).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import re
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genhuman.server.auth import client_key, identify
from genhuman.server.db import QUEUED
from genhuman.server.settings import ServerSettings, is_loopback

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
BUSY = "the server is busy checking other uploads; retry in 5 s"
TIMED_OUT = "genhuman.body_timed_out"  # set in the ASGI scope when BodyDeadline cut a body off
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
            "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")
FIXED_HEADERS = [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
                 (b"referrer-policy", b"no-referrer"), (b"cross-origin-opener-policy", b"same-origin")]


class BodyTimeout(HTTPException):
    """The client took longer than the deadline to send its body (FastAPI passes
    HTTPExceptions raised while it reads the body through unchanged)."""

    def __init__(self, seconds: float):
        super().__init__(408, f"the request body took longer than {seconds:g} s to arrive",
                         headers={"Connection": "close"})


def docs_csp(docs_html: str) -> str:
    """The /docs page's CSP: its one inline script allowed by hash, nothing else inline
    but styles (Swagger UI sets them)."""
    scripts = re.findall(r"<script>(.*?)</script>", docs_html, flags=re.S)
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
                      for s in scripts)
    return (f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


def security_headers(app: ASGIApp, docs_policy: str) -> ASGIApp:
    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await app(scope, receive, send)
        policy = (docs_policy if scope["path"] == "/docs" else PAGE_CSP).encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *FIXED_HEADERS,
                                      (b"content-security-policy", policy)]
            await send(message)

        await app(scope, receive, send_with_headers)

    return guarded


class BodyDeadline:
    """Raises :class:`BodyTimeout` when the body is not complete ``seconds`` after the
    request started. Only while the body is incomplete: later ``receive`` calls (a
    download listening for the client going away) are not limited."""

    def __init__(self, app: ASGIApp, seconds: float):
        self.app, self.seconds = app, seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        complete = False

        async def timed_receive() -> Message:
            nonlocal complete
            if complete:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                # FastAPI may wrap what receive raises into its own 400; the mark says why
                scope[TIMED_OUT] = True
                raise BodyTimeout(self.seconds) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        await self.app(scope, timed_receive, send)


def install(app: FastAPI, settings: ServerSettings, services: Any, body_limit: int,
            too_large: Callable[[int], str]) -> None:
    @app.middleware("http")
    async def refuse_early(request: Request, call_next):
        declared = request.headers.get("content-length", "")
        close = {"Connection": "close"}
        if declared.isdigit() and int(declared) > body_limit:
            return JSONResponse({"error": too_large(body_limit)}, status_code=413, headers=close)
        if request.method == "POST" and declared.isdigit() and int(declared) > 0:
            free = services.storage.free_bytes() - int(settings.min_free_mb * (1 << 20))
            if int(declared) * 2 > free:  # the spooled copy and the upload
                return JSONResponse({"error": "the server is out of disk space; retry later"}, status_code=507,
                                    headers=close)
        if request.method == "POST" and request.url.path == "/v1/jobs" and identify(request, settings):
            wait = services.limiter.take(client_key(request, settings))
            if wait is not None:
                return JSONResponse({"error": f"too many jobs from this client; retry in {wait} s"},
                                    status_code=429, headers={"Retry-After": str(wait), **close})
            # No free slot in the validation pool: refused before the body is read. (Only a
            # look: the slot is taken once the body is in, so a slow client holds none.)
            if services.validation.full():
                return JSONResponse({"error": BUSY}, status_code=503, headers={"Retry-After": "5", **close})
            full = await run_in_threadpool(queue_full, services)
            if full is not None:
                message, wait = full
                return JSONResponse({"error": message}, status_code=429, headers={"Retry-After": str(wait), **close})
        return await call_next(request)

    @app.middleware("http")
    async def refuse_foreign(request: Request, call_next):
        # DNS rebinding: a page on attacker.example re-pointed at 127.0.0.1 still sends
        # "Host: attacker.example". CSRF: a cross-origin form post sends its Origin. Both are
        # refused before anything else happens (a token, when set, protects the rest).
        problem = foreign_request(request, settings)
        if problem:
            return JSONResponse({"error": problem}, status_code=403)
        return await call_next(request)


def queue_full(services: Any) -> Optional[tuple[str, int]]:
    """(message, Retry-After seconds) while the queue holds max_queue jobs, else None."""
    store = services.store
    queued = store.count(QUEUED)
    if queued < store.max_queue:
        return None
    workers = max(1, len(services.pool.workers))
    wait = max(1, min(3600, math.ceil(queued * store.mean_run_seconds() / workers)))
    return f"the queue is full ({queued} jobs waiting); retry in {wait} s", wait


def foreign_request(request: Request, settings: ServerSettings) -> Optional[str]:
    """Why a request that a browser sent on behalf of another site is refused, or None."""
    host_header = request.headers.get("host", "")
    hostname = (urlsplit(f"//{host_header}").hostname or "").lower()
    if not settings.client_tokens:
        known = {settings.host.lower().strip("[]"), "localhost", *(h.lower() for h in settings.allowed_hosts)}
        if hostname not in known and not (hostname and is_loopback(hostname)):
            return f"refusing a request for host {hostname[:60]!r}: this server answers only to its own address"
    if request.method in SAFE_METHODS:
        return None
    origin = request.headers.get("origin")
    if origin is not None:
        same = origin.lower() in {f"http://{host_header}".lower(), f"https://{host_header}".lower()}
        if not same and origin not in settings.cors_origins:
            return "refusing a cross-origin request; allow the origin with --cors-origin"
    elif request.headers.get("sec-fetch-site") == "cross-site":
        return "refusing a cross-origin request; allow the origin with --cors-origin"
    return None
