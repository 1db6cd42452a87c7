"""The server's cache of prepared avatars, so that repeated jobs with one portrait skip face
detection and reference encoding (``engine.prepare_avatar``).

Each worker owns one :class:`AvatarCache`: its engine instances and its device hold the
live objects an avatar carries (reference tensors on that GPU), so avatars are not shared
between workers. The key is the content hash of the decoded portrait
(:func:`~genhuman.engines.avatar.image_digest`) plus what the avatar depends on: the engine,
its load-time options (accelerated, weights folder), and the request's geometry options
(face index, max size, generation size, paste-back) after the engine's ``validate`` filled
in its defaults, so an unset size and the default size share one entry. Options the engine
does not use (per their spec) are left out of the key.

With ``avatar_cache_disk`` the avatars are also saved under the data folder
(:class:`DiskAvatars`): shared by the workers and kept across restarts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any, Generic, Hashable, Optional, TypeVar

from genhuman.engines.avatar import META_FILE, Avatar
from genhuman.request import AnimateRequest, request_options

log = logging.getLogger(__name__)

# AnimateRequest fields an avatar depends on (the rest only shape the motion or the output).
AVATAR_FIELDS = ("face_index", "max_size", "width", "height", "paste_back", "prompt", "negative_prompt")

V = TypeVar("V")


class LRU(Generic[V]):
    """A small thread-safe least-recently-used map, bounded by count; counts hits/misses."""

    def __init__(self, capacity: int):
        self.capacity = max(0, int(capacity))
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = self.evictions = 0

    def get(self, key: Hashable) -> Optional[V]:
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Hashable, value: V) -> None:
        if self.capacity == 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
                self.evictions += 1

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._items.pop(key, None)

    def discard_prefix(self, prefix: str) -> int:
        """Drop every entry whose (string) key starts with ``prefix``; returns how many."""
        with self._lock:
            doomed = [k for k in self._items if isinstance(k, str) and k.startswith(prefix)]
            for k in doomed:
                del self._items[k]
            return len(doomed)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:  # a peek: counts no hit or miss, moves nothing
        with self._lock:
            return key in self._items

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"size": len(self._items), "capacity": self.capacity, "hits": self.hits,
                    "misses": self.misses, "evictions": self.evictions}


def avatar_key(engine: str, digest: str, request: AnimateRequest, **load: Any) -> str:
    """The cache key: portrait digest + engine + load-time options + the geometry options
    ``engine`` uses (``request`` should be the engine-validated one). It starts with
    :func:`portrait_prefix` so that every avatar of one portrait can be found (and deleted)."""
    specs = dict(request_options(AnimateRequest))
    geometry = {name: getattr(request, name) for name in AVATAR_FIELDS
                if _uses(specs[name].engines, engine)}
    parts = {"engine": engine, "image": digest, "load": load, "geometry": geometry,
             "extra": dict(request.extra)}
    text = json.dumps(parts, sort_keys=True, default=str)
    return portrait_prefix(digest) + hashlib.sha256(text.encode()).hexdigest()


def _uses(engines: Optional[frozenset[str]], engine: str) -> bool:
    """Whether an option meant for ``engines`` (None: every engine) applies to ``engine``."""
    return engines is None or engine in engines


def portrait_prefix(digest: str) -> str:
    """The start of the keys of every avatar made from the portrait with this digest."""
    return digest[:32] + "-"


class AvatarCache(LRU[Any]):
    """Prepared avatars of one worker, by :func:`avatar_key`."""


def merged_stats(caches: list[LRU]) -> dict[str, int]:
    """The figures of several caches added up (for /healthz)."""
    total = {"size": 0, "capacity": 0, "hits": 0, "misses": 0, "evictions": 0}
    for cache in caches:
        for k, v in cache.stats().items():
            total[k] += v
    return total


class DiskAvatars:
    """Prepared avatars saved under ``directory/<key>/`` (``Avatar.save``/``Avatar.load``),
    shared by the workers of one server and kept across restarts; at most ``capacity``
    (the least recently used are deleted). A saved avatar carries no live objects: the
    engine rebuilds them on the worker's own device. One that cannot be read (older format,
    corrupt) is deleted and counts as a miss; one the engine refuses (other weights) is
    discarded by the worker, which prepares it again."""

    def __init__(self, directory: Path, capacity: int):
        self.directory = Path(directory)
        self.capacity = max(0, int(capacity))
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.hits = self.misses = self.evictions = 0
        for stray in self.directory.glob(".tmp-*"):  # half-written by a killed server
            shutil.rmtree(stray, ignore_errors=True)

    def _path(self, key: str) -> Path:
        return self.directory / Path(key).name

    def has(self, key: str) -> bool:
        return (self._path(key) / META_FILE).is_file()

    def load(self, key: str) -> Optional[Avatar]:
        path = self._path(key)
        with self._lock:
            if not (path / META_FILE).is_file():
                self.misses += 1
                return None
            try:
                avatar = Avatar.load(path)
            except Exception as exc:  # InputError (older format), or safetensors' own error (corrupt)
                log.warning("dropping an unreadable saved avatar (%s)", str(exc).split("\n")[0][:200])
                shutil.rmtree(path, ignore_errors=True)
                self.misses += 1
                return None
            os.utime(path)  # most recently used
            self.hits += 1
            return avatar

    def save(self, key: str, avatar: Avatar) -> None:
        if self.capacity == 0:
            return
        path = self._path(key)
        temporary = self.directory / f".tmp-{uuid.uuid4().hex}"
        try:
            avatar.save(temporary)
        except Exception:  # e.g. metadata that is not JSON, a full disk: keep it in memory only
            shutil.rmtree(temporary, ignore_errors=True)
            log.warning("could not save a %s avatar to disk", avatar.engine, exc_info=True)
            return
        with self._lock:
            if path.exists():
                shutil.rmtree(path, ignore_errors=True)
            temporary.rename(path)
            entries = sorted((p for p in self.directory.iterdir() if p.is_dir() and not p.name.startswith(".")),
                             key=lambda p: p.stat().st_mtime)
            for old in entries[:max(0, len(entries) - self.capacity)]:
                shutil.rmtree(old, ignore_errors=True)
                self.evictions += 1

    def discard(self, key: str) -> None:
        with self._lock:
            shutil.rmtree(self._path(key), ignore_errors=True)

    def discard_prefix(self, prefix: str) -> int:
        with self._lock:
            doomed = [p for p in self.directory.iterdir() if p.name.startswith(Path(prefix).name)]
            for path in doomed:
                shutil.rmtree(path, ignore_errors=True)
            return len(doomed)

    def stats(self) -> dict[str, int]:
        with self._lock:
            size = sum(1 for p in self.directory.iterdir() if p.is_dir() and not p.name.startswith("."))
            return {"size": size, "capacity": self.capacity, "hits": self.hits, "misses": self.misses,
                    "evictions": self.evictions}
