"""The sampler EchoMimic (V1 and V2) was trained for: diffusers' DDIMScheduler, configured."""

from __future__ import annotations

from diffusers import DDIMScheduler

# configs/inference/inference_v2.yaml (spec echomimic.md §2.2); eta 0, set_alpha_to_one True.
ECHOMIMIC_SCHEDULER = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="linear",
    clip_sample=False,
    set_alpha_to_one=True,
    steps_offset=1,
    prediction_type="v_prediction",
    rescale_betas_zero_snr=True,
    timestep_spacing="trailing",
)


def echomimic_scheduler(**overrides) -> DDIMScheduler:
    return DDIMScheduler(**{**ECHOMIMIC_SCHEDULER, **overrides})
