"""LoRA adapters (peft) on the attention projections of the trainable modules, and the merged
weights a LoRA run saves (plain networks the engines load; the adapter alone is saved too)."""

from __future__ import annotations

import logging

import torch
from torch import nn

log = logging.getLogger(__name__)

TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


def lora_targets(module: nn.Module, trainable: set[str], prefix: str) -> list[str]:
    """Names (inside ``module``) of the attention projections whose weight is in ``trainable``."""
    names = []
    for name, sub in module.named_modules():
        if isinstance(sub, nn.Linear) and name.endswith(TARGETS) and f"{prefix}{name}.weight" in trainable:
            names.append(name)
    return names


def add_lora(module: nn.Module, targets: list[str], rank: int, alpha: int) -> int:
    """Inject LoRA adapters into ``targets`` of ``module``; only the adapters train afterwards.
    Returns the adapters' parameter count."""
    from peft import LoraConfig, inject_adapter_in_model

    if not targets:
        return 0
    config = LoraConfig(r=rank, lora_alpha=alpha or rank, target_modules=targets, init_lora_weights=True)
    inject_adapter_in_model(config, module)
    count = sum(p.numel() for n, p in module.named_parameters() if "lora_" in n)
    log.info("LoRA rank %d on %d projections: %d parameters", rank, len(targets), count)
    return count


def has_lora(module: nn.Module) -> bool:
    return any("lora_" in name for name, _ in module.named_parameters())


@torch.no_grad()
def merged_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """``module``'s state dict with every LoRA delta folded into its base weight and the peft
    names undone (``x.base_layer.weight`` -> ``x.weight``): the plain network's keys."""
    from peft.tuners.lora import LoraLayer

    state = {k: v for k, v in module.state_dict().items() if "lora_" not in k}
    for name, sub in module.named_modules():
        if isinstance(sub, LoraLayer):
            key = f"{name}.base_layer.weight"
            delta = sum(sub.get_delta_weight(a) for a in sub.active_adapters)  # type: ignore[attr-defined]
            state[key] = state[key] + delta
    return {k.replace(".base_layer.", "."): v for k, v in state.items()}


def adapter_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in module.state_dict().items() if "lora_" in k}
