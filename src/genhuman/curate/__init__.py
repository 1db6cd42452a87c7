"""``genhuman data curate``: raw videos in, filtered talking-human clips with scores and a
report out, in this process or on a Ray cluster (OpenHumanVid / LatentSync-style stages)."""

from genhuman.curate.config import CurateConfig
from genhuman.curate.pipeline import RunResult, curate

__all__ = ["CurateConfig", "RunResult", "curate"]
