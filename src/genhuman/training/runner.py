"""Stage-1/stage-2 training end to end: weights folder + prepared data -> checkpoints in both layouts."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from safetensors.torch import save_file
from torch import nn

from genhuman.errors import InputError
from genhuman.training import stage1, stage2
from genhuman.training.config import TrainConfig
from genhuman.training.dataset import PreparedDataset
from genhuman.training.lora import adapter_state_dict, add_lora, has_lora, lora_targets, merged_state_dict
from genhuman.training.loop import RunContext, RunResult, run
from genhuman.training.model import EchoMimicBundle, Keep, diffusion_loss, select_trainable

log = logging.getLogger(__name__)

NETWORKS = ("reference_unet", "denoising_unet", "condition_encoder")


def load_components(init: Optional[str], what: str = "init"):
    """The weights folder training starts from (official or converted), in float32 on the CPU."""
    from genhuman.checkpoints import load_echomimic

    if not init:
        raise InputError(f"{what}: give the weights folder to start from (official EchoMimic layout or converted)")
    if not Path(init).is_dir():
        raise InputError(f"{what}: weights folder not found: {init!r}")
    return load_echomimic(init, variant=None if (Path(init) / "genhuman.json").is_file() else "audio")


def bundle_of(components) -> EchoMimicBundle:
    return EchoMimicBundle(components.reference_unet, components.denoising_unet, components.condition_encoder)


def apply_lora(bundle: EchoMimicBundle, trainable: list[str], rank: int, alpha: int) -> None:
    for network in NETWORKS:
        module = getattr(bundle, network)
        targets = lora_targets(module, set(trainable), f"{network}.")
        add_lora(module, targets, rank, alpha)
        if not targets:
            module.requires_grad_(False)


def plain_networks(bundle: nn.Module) -> dict[str, nn.Module]:
    """The bundle's networks without LoRA wrappers (deltas merged), as the engines load them."""
    out: dict[str, nn.Module] = {}
    for name in NETWORKS:
        module = getattr(bundle, name)
        if has_lora(module):
            state = merged_state_dict(module)
            module = type(module).from_state_dict(module.config, {k: v.detach().clone() for k, v in state.items()})
        out[name] = module
    return out


def weights_saver(components, variant: str = "audio", teacher: Optional[dict[str, nn.Module]] = None
                  ) -> Callable[[Path, nn.Module], None]:
    from genhuman.checkpoints.echomimic_save import save_converted, save_official

    def save(folder: Path, bundle: nn.Module) -> None:
        networks = plain_networks(bundle)
        save_converted(folder / "genhuman", networks, components.vae, components.audio_encoder, variant)
        save_official(folder / "official", networks, components.vae, components.audio_encoder, variant, teacher)
        adapters = {f"{n}.{k}": v.detach().cpu().contiguous() for n in NETWORKS
                    for k, v in adapter_state_dict(getattr(bundle, n)).items()}
        if adapters:
            save_file(adapters, str(folder / "lora.safetensors"))

    return save


def stage_loss(config: TrainConfig, dataset: PreparedDataset, scheduler) -> Callable[..., torch.Tensor]:
    stage: Any = stage1 if config.stage == "stage1" else stage2
    frames = 1 if config.stage == "stage1" else config.frames

    def loss(model: nn.Module, generator: torch.Generator, ctx: RunContext) -> torch.Tensor:
        batch = dataset.batch(ctx.step, config.batch_size, frames, stage.USES_AUDIO, seed=config.seed,
                              process=ctx.accelerator.process_index, sample_margin=config.sample_margin)
        keep = Keep.sample(batch.size, generator, config.uncond_ref_ratio,
                           config.uncond_audio_ratio if stage.USES_AUDIO else 0.0, config.uncond_all_ratio)
        return diffusion_loss(model, scheduler, batch.to(ctx.accelerator.device), generator, keep=keep,
                              noise_offset=config.noise_offset, snr_gamma=config.snr_gamma)

    return loss


def prepare_bundle(config: TrainConfig, components) -> EchoMimicBundle:
    from genhuman.training.model import enable_gradient_checkpointing

    bundle = bundle_of(components)
    bundle.float().train()
    stage: Any = stage1 if config.stage == "stage1" else stage2
    trainable = select_trainable(bundle, stage.trains(config))
    if config.lora_rank:
        apply_lora(bundle, trainable, config.lora_rank, config.lora_alpha)
    if config.gradient_checkpointing:
        enable_gradient_checkpointing(bundle)
    count = sum(p.numel() for p in bundle.parameters() if p.requires_grad)
    log.info("%s: %d trainable parameters", config.stage, count)
    return bundle


def train(config: TrainConfig, data_dir: Path, out: Path, resume: Optional[str] = None, progress: bool = True,
          stop_after: Optional[int] = None, dataset: Optional[PreparedDataset] = None) -> RunResult:
    from genhuman.sampling import echomimic_scheduler

    components = load_components(config.init)
    if dataset is None:
        dataset = PreparedDataset(data_dir, components.vae, progress=progress)
    check_tokens(dataset, components.denoising_unet)
    config.save(out)
    bundle = prepare_bundle(config, components)
    return run(out=out, config=config, model=bundle, loss_fn=stage_loss(config, dataset, echomimic_scheduler()),
               save_weights=weights_saver(components), resume=resume, progress=progress, stop_after=stop_after)


def check_tokens(dataset: PreparedDataset, denoiser) -> None:
    dim = dataset.token_shape[1]
    if dim != denoiser.config.cross_attention_dim:
        raise InputError(f"the data's audio features are {dim}-wide but the denoiser attends to "
                         f"{denoiser.config.cross_attention_dim}: prepare the data with this model's whisper")
