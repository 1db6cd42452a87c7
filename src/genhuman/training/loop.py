"""The optimisation loop shared by the trainers and the distiller, on Hugging Face accelerate.

accelerate gives the device placement, DDP/FSDP (``accelerate launch``), mixed precision and
the resumable state (``save_state``/``load_state``: weights, optimizer, EMA, step). Randomness
is drawn per step from generators seeded with ``(seed, step, process)``, so a resumed run
takes exactly the batches, noise and timesteps the uninterrupted run takes: bit for bit on CPU.

Layout of ``out``::

    checkpoints/checkpoint-<step>/state/        accelerate state (resume)
    checkpoints/checkpoint-<step>/genhuman/     converted layout (safetensors)
    checkpoints/checkpoint-<step>/official/     official file layout (.pth)
    checkpoints/checkpoint-<step>/training_config.json
    logs/train.csv, logs/tensorboard/     the mean loss over every ``log_every`` steps
"""

from __future__ import annotations

import csv
import logging
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch import nn

from genhuman.errors import InputError
from genhuman.training.model import trainable_parameters

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
STATE_DIR = "state"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


class StepCounter:
    """The optimiser step count, checkpointed with the accelerate state."""

    def __init__(self) -> None:
        self.step = 0

    def state_dict(self) -> dict[str, int]:
        return {"step": self.step}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.step = int(state["step"])


@dataclass
class RunContext:
    """What a loss function gets besides the model: the accelerator, the EMA weights, the step."""

    accelerator: Any
    ema: Any  # diffusers EMAModel or None
    params: list[nn.Parameter]
    step: int = 0

    def with_ema_weights(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` with the EMA weights in the model (the consistency target network)."""
        if self.ema is None:
            return fn()
        self.ema.store(self.params)
        self.ema.copy_to(self.params)
        try:
            return fn()
        finally:
            self.ema.restore(self.params)


@dataclass
class RunResult:
    steps: int
    losses: list[float] = field(default_factory=list)
    checkpoint: Optional[Path] = None
    seconds: float = 0.0


def step_generator(seed: int, step: int, process: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 1009 + process)


def latest_checkpoint(out: Path) -> Optional[Path]:
    found = [(int(m.group(1)), p) for p in (Path(out) / CHECKPOINTS).glob("checkpoint-*")
             if (m := _CHECKPOINT.match(p.name)) and (p / STATE_DIR).is_dir()]
    return max(found)[1] if found else None


def resolve_resume(out: Path, resume: Optional[str]) -> Optional[Path]:
    """``--resume latest`` (the newest checkpoint under ``out``, none is fine) or a checkpoint folder."""
    if resume is None:
        return None
    if resume == "latest":
        return latest_checkpoint(out)
    path = Path(resume)
    if not (path / STATE_DIR).is_dir():
        raise InputError(f"--resume {resume!r} is not a checkpoint folder (no {STATE_DIR}/ in it)")
    return path


def make_optimizer(params: list[nn.Parameter], lr: float, weight_decay: float, adam_8bit: bool):
    if adam_8bit:
        try:
            import bitsandbytes as bnb

            return bnb.optim.AdamW8bit(params, lr=lr, weight_decay=weight_decay)
        except ImportError:
            log.warning("adam_8bit: bitsandbytes is not installed; using torch AdamW")
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


class _Logs:
    """CSV (always) and TensorBoard (when it imports), on the main process only."""

    def __init__(self, directory: Path, enabled: bool, resume_step: int):
        self.enabled = enabled
        self.writer = None
        if not enabled:
            return
        directory.mkdir(parents=True, exist_ok=True)
        self.csv_path = directory / "train.csv"
        rows = []
        if resume_step and self.csv_path.is_file():  # keep the rows before the resumed step
            with self.csv_path.open() as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        self.file = self.csv_path.open("w", newline="")
        self.csv = csv.DictWriter(self.file, fieldnames=["step", "loss", "lr", "seconds"])
        self.csv.writeheader()
        self.csv.writerows(rows)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(directory / "tensorboard"), purge_step=resume_step + 1)
        except ImportError:
            log.info("tensorboard is not installed: CSV logs only")

    def add(self, step: int, loss: float, lr: float, seconds: float) -> None:
        if not self.enabled:
            return
        self.csv.writerow({"step": step, "loss": f"{loss:.8g}", "lr": f"{lr:.3g}", "seconds": f"{seconds:.3f}"})
        self.file.flush()
        if self.writer is not None:
            self.writer.add_scalar("train/loss", loss, step)
            self.writer.add_scalar("train/lr", lr, step)

    def close(self) -> None:
        if self.enabled:
            self.file.close()
            if self.writer is not None:
                self.writer.close()


def run(*, out: Path, config: Any, model: nn.Module,
        loss_fn: Callable[[nn.Module, torch.Generator, RunContext], torch.Tensor],
        save_weights: Callable[[Path, nn.Module], None], resume: Optional[str] = None,
        progress: bool = True, stop_after: Optional[int] = None) -> RunResult:
    """Optimise ``model``'s trainable parameters for ``config.steps`` steps.

    ``save_weights(folder, model)`` writes the engine-loadable layouts (with the EMA weights in
    the model when EMA is on). ``stop_after``: stop (and checkpoint) after that many steps, as
    an interruption would (tests)."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs
    from diffusers.training_utils import EMAModel
    from tqdm import tqdm

    out = Path(out)
    accelerator = Accelerator(mixed_precision=config.mixed_precision, project_dir=str(out),
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    params = list(trainable_parameters(model))
    if not params:
        raise InputError("nothing to train: the config leaves every parameter frozen")
    optimizer = make_optimizer(params, config.learning_rate, config.weight_decay, config.adam_8bit)
    ema = EMAModel(params, decay=config.ema_decay) if config.ema_decay > 0 else None
    model, optimizer = accelerator.prepare(model, optimizer)
    counter = StepCounter()
    accelerator.register_for_checkpointing(counter)
    if ema is not None:
        ema.to(accelerator.device)
        accelerator.register_for_checkpointing(ema)
    start_from = resolve_resume(out, resume)
    if start_from is not None:
        accelerator.load_state(str(start_from / STATE_DIR))
        log.info("resumed from %s (step %d)", start_from, counter.step)
    main = accelerator.is_main_process
    logs = _Logs(out / "logs", main, counter.step)
    ctx = RunContext(accelerator, ema, params)
    result = RunResult(steps=counter.step)
    last = config.steps if stop_after is None else min(config.steps, counter.step + stop_after)
    begin = time.perf_counter()
    bar = tqdm(total=config.steps, initial=counter.step, desc="training", unit="step",
               disable=not (progress and main), dynamic_ncols=True)
    model.train()
    try:
        for step in range(counter.step, last):
            ctx.step = step
            generator = step_generator(config.seed, step, accelerator.process_index)
            with accelerator.accumulate(model), accelerator.autocast():
                loss = loss_fn(model, generator, ctx)
            accelerator.backward(loss)
            if config.max_grad_norm and accelerator.sync_gradients:
                accelerator.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if ema is not None:
                ema.step(params)
            counter.step = step + 1
            value = float(accelerator.gather(loss.detach()[None]).mean())
            result.losses.append(value)
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4g}")
            if counter.step % config.log_every == 0 or counter.step == last:
                since = (counter.step - 1) % config.log_every + 1  # the mean over the steps since the last row
                logs.add(counter.step, sum(result.losses[-since:]) / len(result.losses[-since:]),
                         optimizer.param_groups[0]["lr"], time.perf_counter() - begin)
            if (config.save_every and counter.step % config.save_every == 0) or counter.step == last:
                result.checkpoint = save_checkpoint(out, counter.step, accelerator, model, ctx, config,
                                                    save_weights)
    finally:
        bar.close()
        logs.close()
    result.steps = counter.step
    result.seconds = time.perf_counter() - begin
    return result


def save_checkpoint(out: Path, step: int, accelerator, model: nn.Module, ctx: RunContext, config: Any,
                    save_weights: Callable[[Path, nn.Module], None]) -> Path:
    folder = out / CHECKPOINTS / f"checkpoint-{step}"
    if folder.exists() and accelerator.is_main_process:
        shutil.rmtree(folder)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(folder / STATE_DIR))
    if accelerator.is_main_process:
        plain = accelerator.unwrap_model(model)
        ctx.with_ema_weights(lambda: save_weights(folder, plain))
        config.save(folder)
        log.info("checkpoint %s", folder)
    accelerator.wait_for_everyone()
    return folder
