"""Model CPU offload, one model at a time (diffusers' "model offload" idea, for engines whose models are
called through methods other than ``forward``, such as a VAE's ``encode``/``decode``).

``with offload.use(module):`` puts ``module`` on the execution device and moves the model used before it back
to CPU memory, so that GPU memory holds one model's weights at a time. Consecutive uses of the same model
move nothing. Disabled, ``use`` only yields: the models stay where they were loaded.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator, Optional

import torch
from torch import nn

log = logging.getLogger(__name__)


class ModelOffload:
    def __init__(self, device: torch.device, enabled: bool):
        self.device = device
        self.enabled = enabled
        self._resident: Optional[nn.Module] = None

    @property
    def load_device(self) -> torch.device:
        """Where models are loaded: CPU memory when offloading, else the execution device."""
        return torch.device("cpu") if self.enabled else self.device

    @contextmanager
    def use(self, module: nn.Module) -> Iterator[nn.Module]:
        if self.enabled and self._resident is not module:
            if self._resident is not None:
                self._resident.to("cpu")
            module.to(self.device)
            self._resident = module
        yield module

    def release(self, module: nn.Module) -> None:
        """Forget ``module`` (about to be freed): the next use moves nothing back for it."""
        if self._resident is module:
            self._resident = None
