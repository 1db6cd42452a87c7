"""Server settings: one dataclass filled by ``genhuman serve`` (or by tests)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from genhuman.errors import InputError

TOKEN_ENV = "GENHUMAN_TOKEN"
ADMIN_TOKEN_ENV = "GENHUMAN_ADMIN_TOKEN"


@dataclass
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("genhuman-data")  # uploads/, results/ and the SQLite file live here
    db_url: Optional[str] = None  # None = sqlite:///<data_dir>/jobs.sqlite3; any SQLAlchemy URL works
    workers: Optional[int] = None  # engine worker threads; None = one per device
    token: Optional[str] = None  # bearer token; required when host is not loopback
    max_upload_mb: float = 50.0  # cap on one request body
    max_queue: int = 32  # queued jobs beyond this are refused with 429
    max_attempts: int = 2  # a job interrupted this many times (server killed) is failed
    max_text_chars: int = 2000  # text-to-speech input cap
    max_audio_seconds: float = 300.0
    cors_origins: list[str] = field(default_factory=list)  # empty = CORS off
    engines: Optional[list[str]] = None  # allowed engine names; None = every registered one
    default_engine: str = "lite"
    weights: dict[str, Path] = field(default_factory=dict)  # engine name -> weights folder (diffusion engines)
    avatar_cache: int = 16  # prepared avatars kept per worker (LRU); 0 = off (every job prepares its own)
    avatar_cache_disk: int = 0  # prepared avatars also saved under <data_dir>/avatars (shared, kept); 0 = off
    # Host names accepted in the Host header besides loopback ones and ``host`` itself (a server
    # without a token answers only those: a DNS-rebinding page cannot reach it by another name).
    allowed_hosts: list[str] = field(default_factory=list)
    # -- bounded cost (issue 9) --
    max_output_size: int = 1024  # longer side of the portrait the engines render; a request may ask smaller
    max_image_pixels: int = 16_000_000  # decoded pixels of an upload (checked from the header first)
    rate_limit: float = 60.0  # job submissions per minute per client (token, session or address); 0 = off
    rate_burst: int = 20  # submissions a client may make at once before the rate applies
    validation_threads: int = 2  # decoding, face checks and TTS of uploads run on these threads only
    validation_backlog: int = 8  # submissions waiting for a validation thread; more get 503 at once
    body_timeout: float = 60.0  # seconds a client may take to send a request body
    min_free_mb: float = 64.0  # uploads that would leave less free disk than this get 507
    # Further client tokens (each one owns its own jobs); the admin token sees every job.
    tokens: list[str] = field(default_factory=list)
    admin_token: Optional[str] = None
    # -- live conversation (/live) --
    live: Any = None  # a genhuman.live.options.LiveOptions; None = the defaults
    live_portraits: list[Path] = field(default_factory=list)  # images or folders offered on /live; empty = off
    ice_servers: list[str] = field(default_factory=list)  # stun:/turn: URLs for real deployments
    ice_username: Optional[str] = None
    ice_credential: Optional[str] = None
    live_warm_up: bool = True  # load the language model, voice and first avatar at start-up

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{Path(self.data_dir).resolve() / 'jobs.sqlite3'}"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def client_tokens(self) -> list[str]:
        """Every token that admits a caller (the admin token included)."""
        return [t for t in (self.token, *self.tokens, self.admin_token) if t]

    def resolve(self) -> "ServerSettings":
        """Fill the token from the environment and refuse unsafe or absurd settings."""
        if not self.token:
            self.token = os.environ.get(TOKEN_ENV) or None
        if not self.admin_token:
            self.admin_token = os.environ.get(ADMIN_TOKEN_ENV) or None
        if not is_loopback(self.host) and not self.client_tokens:
            raise InputError(f"refusing to listen on {self.host!r} without a token; pass --token "
                             f"or set {TOKEN_ENV} (or bind to 127.0.0.1)")
        if self.workers is not None and not 1 <= self.workers <= 64:
            raise InputError(f"workers must be between 1 and 64, got {self.workers}")
        if self.max_queue < 1:
            raise InputError(f"max queue must be at least 1, got {self.max_queue}")
        if not self.max_upload_mb > 0:
            raise InputError(f"max upload must be a positive number of MB, got {self.max_upload_mb}")
        if not 0 <= self.avatar_cache <= 4096:
            raise InputError(f"avatar cache must be between 0 and 4096, got {self.avatar_cache}")
        if not 0 <= self.avatar_cache_disk <= 100_000:
            raise InputError(f"avatar cache disk must be between 0 and 100000, got {self.avatar_cache_disk}")
        if not 64 <= self.max_output_size <= 4096:
            raise InputError(f"max output size must be between 64 and 4096, got {self.max_output_size}")
        if not 4096 <= self.max_image_pixels <= 200_000_000:
            raise InputError(f"max image pixels must be between 4096 and 200000000, got {self.max_image_pixels}")
        if not 0 <= self.rate_limit <= 100_000 or self.rate_burst < 1:
            raise InputError(f"rate limit must be between 0 and 100000 per minute with a burst of at least 1, "
                             f"got {self.rate_limit} and {self.rate_burst}")
        if not 1 <= self.validation_threads <= 16 or not 0 <= self.validation_backlog <= 1000:
            raise InputError("validation threads must be between 1 and 16 and the backlog between 0 and 1000")
        if not self.body_timeout > 0:
            raise InputError(f"body timeout must be a positive number of seconds, got {self.body_timeout}")
        if self.max_attempts < 1:
            raise InputError(f"max attempts must be at least 1, got {self.max_attempts}")
        from genhuman.live.options import LiveOptions

        if self.live is None:
            self.live = LiveOptions()
        for url in self.ice_servers:
            if not url.startswith(("stun:", "turn:", "turns:")):
                raise InputError(f"an ICE server must be a stun:, turn: or turns: URL, got {url[:60]!r}")
        self.live_portraits = [Path(p) for p in self.live_portraits]
        self.data_dir = Path(self.data_dir)
        self.weights = {name: Path(folder) for name, folder in self.weights.items()}
        for name, folder in self.weights.items():
            if not folder.is_dir():
                raise InputError(f"weights folder for {name} not found: {str(folder)!r}")
        return self


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost: treat as public
        return False
