"""``genhuman download echomimic_v3`` fails fast, in one line, without the hub."""

from __future__ import annotations

import time

import pytest

from genhuman.checkpoints.download import DownloadError, download_echomimic_v3
from genhuman.errors import InputError


def test_offline_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(DownloadError, match="HF_HUB_OFFLINE"):
        download_echomimic_v3(tmp_path / "w", "flash")
    assert time.monotonic() - start < 5
    assert not (tmp_path / "w").exists()


def test_unknown_variant(tmp_path):
    with pytest.raises(InputError, match="preview, flash"):
        download_echomimic_v3(tmp_path, "pro")
