"""The DDIM samplers of EchoMimic (V1 and V2) and Hallo: diffusers' DDIMScheduler, configured."""

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


# Hallo and Hallo2 (spec hallo.md §1.6): configs/inference/default.yaml noise_scheduler_kwargs
# with enable_zero_snr, as scripts/inference.py builds it (num_train_timesteps, set_alpha_to_one
# and eta are diffusers' defaults). Training-mode quirk: right after building this scheduler the
# official script switches its kwargs to "scaled_linear" betas for the training scheduler, so
# Hallo was trained on scaled_linear and samples on linear; inference is what we reproduce.
HALLO_SCHEDULER = dict(ECHOMIMIC_SCHEDULER)  # the same numbers (a test pins them to Hallo's own yaml)
HALLO_TRAINING_BETA_SCHEDULE = "scaled_linear"
HALLO_INFERENCE_STEPS = 40


def hallo_scheduler(**overrides) -> DDIMScheduler:
    return DDIMScheduler(**{**HALLO_SCHEDULER, **overrides})
