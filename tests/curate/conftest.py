"""One synthetic raw video (10 shots, one per variant, hard cuts every 56 frames), rendered
by the lite engine once per session, and one local curation run over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from genhuman.curate import CurateConfig, curate, synthetic

SHOT_FRAMES = 56


def small_config() -> CurateConfig:
    """2 s segments (one per 56-frame shot after the 2-frame margins), 128 px clips."""
    config = CurateConfig()
    config.segments.length_s = 2.0
    config.segments.min_length_s = 2.0
    config.output.size = 128
    config.output.thumbnails = 4
    return config


@pytest.fixture(scope="session")
def base(tmp_path_factory, portrait_path, speech_path) -> synthetic.Base:
    path = synthetic.render_base(tmp_path_factory.mktemp("base") / "base.mp4", portrait_path, speech_path)
    return synthetic.Base.load(path)


@pytest.fixture(scope="session")
def raw(tmp_path_factory, base) -> tuple[Path, list[synthetic.ShotTruth]]:
    path = tmp_path_factory.mktemp("raw") / "talk.mp4"
    truth = synthetic.build_video(path, base, list(synthetic.VARIANTS), SHOT_FRAMES, seed=1)
    return path, truth


@pytest.fixture(scope="session")
def local_run(tmp_path_factory, raw):
    out = tmp_path_factory.mktemp("out")
    return curate(str(raw[0]), out, small_config(), use_ray=False, progress=False)


@pytest.fixture(scope="session")
def listing(tmp_path_factory, base) -> Path:
    """A text file of inputs: a corrupt file, an empty one, a URL that cannot be opened and
    a good two-shot video (audio 10 frames early, then no face)."""
    folder = tmp_path_factory.mktemp("listing")
    good = folder / "good.mp4"
    synthetic.build_video(good, base, ["shifted", "noface"], SHOT_FRAMES, seed=5)
    corrupt = folder / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    (folder / "empty.mp4").write_bytes(b"")
    path = folder / "inputs.txt"
    path.write_text(f"{corrupt}\nempty.mp4\nhttp://127.0.0.1:9/missing.mp4\n# a comment\n{good}\n")
    return path


@pytest.fixture(scope="session")
def listing_local_run(tmp_path_factory, listing):
    return curate(str(listing), tmp_path_factory.mktemp("listing_out"), small_config(), use_ray=False,
                  progress=False, report=False)
