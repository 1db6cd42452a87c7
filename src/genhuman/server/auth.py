"""Who is calling: the bearer token check and the job owner it implies.

A job belongs to whoever made it: the browser session (a random cookie the page gets on
its first visit), else the bearer token, else ``"local"`` (a loopback server without
tokens, called by scripts). Owners are stored as hashes, never as the secret itself. The
admin token sees every job; nobody else sees another owner's jobs (they answer 404).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Optional

from starlette.requests import HTTPConnection

from genhuman.server.settings import ServerSettings

SESSION_COOKIE = "genhuman_session"
LOCAL_OWNER = "local"
_SESSION_FORMAT = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Caller:
    owner: str
    admin: bool = False

    def sees(self, job_owner: Optional[str]) -> bool:
        return self.admin or job_owner == self.owner


def _hashed(kind: str, secret: str) -> str:
    return f"{kind}:{hashlib.sha256(secret.encode()).hexdigest()[:32]}"


def bearer(request: HTTPConnection) -> Optional[str]:
    header = request.headers.get("authorization", "")
    given = header[7:] if header.lower().startswith("bearer ") else None
    if given is None and request.url.path.endswith("/video"):
        given = request.query_params.get("token")  # a <video src> cannot send headers
    return given


def session_id(request: HTTPConnection) -> Optional[str]:
    value = request.cookies.get(SESSION_COOKIE, "")
    return value if _SESSION_FORMAT.fullmatch(value) else None


def new_session_id() -> str:
    return secrets.token_hex(16)


def identify(request: HTTPConnection, settings: ServerSettings) -> Optional[Caller]:
    """The caller, or None when the server wants a token and the request has no right one."""
    tokens = settings.client_tokens
    matched: Optional[str] = None
    if tokens:
        given = bearer(request)
        if given is None:
            return None
        for token in tokens:  # compare with each (constant time per token)
            if hmac.compare_digest(given.encode(), token.encode()):
                matched = token
        if matched is None:
            return None
    admin = bool(settings.admin_token) and matched == settings.admin_token
    session = session_id(request)
    if session is not None:
        return Caller(_hashed("session", session), admin)
    if matched is not None:
        return Caller(_hashed("token", matched), admin)
    return Caller(LOCAL_OWNER, admin)


def client_key(request: HTTPConnection, settings: ServerSettings) -> str:
    """What the rate limit counts by: the token when one is sent, else the address (a
    session cookie is the client's to change, so it does not count)."""
    given = bearer(request)
    if given and settings.client_tokens and any(hmac.compare_digest(given.encode(), t.encode())
                                                for t in settings.client_tokens):
        return _hashed("token", given)
    return "address:" + (request.client.host if request.client else "unknown")
