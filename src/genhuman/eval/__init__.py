"""Measuring outputs: lip sync from a video alone, identity kept against the portrait."""

from genhuman.eval.identity import IdentityReport, upper_face_psnr
from genhuman.eval.lipsync import LipSyncReport, lipsync_stats, measure_lipsync

__all__ = ["IdentityReport", "LipSyncReport", "lipsync_stats", "measure_lipsync", "upper_face_psnr"]
