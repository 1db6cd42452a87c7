"""Server settings: one dataclass filled by ``genhuman serve`` (or by tests)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from genhuman.errors import InputError

TOKEN_ENV = "GENHUMAN_TOKEN"


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

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{Path(self.data_dir).resolve() / 'jobs.sqlite3'}"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def resolve(self) -> "ServerSettings":
        """Fill the token from the environment and refuse unsafe or absurd settings."""
        if not self.token:
            self.token = os.environ.get(TOKEN_ENV) or None
        if not is_loopback(self.host) and not self.token:
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
        if self.max_attempts < 1:
            raise InputError(f"max attempts must be at least 1, got {self.max_attempts}")
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
