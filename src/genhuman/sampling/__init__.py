"""Sampling shared by the diffusion families: scheduler, context windows, guidance, loop."""

from genhuman.sampling.guidance import apply_guidance, uses_guidance
from genhuman.sampling.loop import PredictFn, StepCallback, denoise, initial_noise, predict_windows
from genhuman.sampling.scheduler import ECHOMIMIC_SCHEDULER, echomimic_scheduler
from genhuman.sampling.windows import WindowBlender, WindowSchedule

__all__ = ["ECHOMIMIC_SCHEDULER", "PredictFn", "StepCallback", "WindowBlender", "WindowSchedule", "apply_guidance",
           "denoise", "echomimic_scheduler", "initial_noise", "predict_windows", "uses_guidance"]
