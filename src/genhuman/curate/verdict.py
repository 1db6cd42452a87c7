"""What every stage returns: its scores (manifest columns) and its decision with a reason."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Verdict:
    stage: str
    passed: bool
    reason: str = ""  # empty when passed; one short sentence otherwise
    scores: dict[str, float] = field(default_factory=dict)

    @classmethod
    def check(cls, stage: str, scores: dict[str, float], failures: list[str]) -> "Verdict":
        """Passed when ``failures`` (reasons, in order of checking) is empty."""
        return cls(stage, not failures, "; ".join(failures), scores)


# Pipeline order: the first failing stage is a segment's rejection reason.
STAGE_ORDER = ["technical", "luminance", "blur", "motion", "face", "speech", "lipsync", "syncnet", "dedup"]
