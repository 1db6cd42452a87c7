"""Phased step distillation in the multistep-consistency (MSC) form.

The teacher's DDIM trajectory (the inference scheduler, ``teacher_steps`` trailing steps) is cut
into ``phases`` equal segments of ``m = teacher_steps / phases`` sub-steps. For ``x_t`` at any
sub-step of segment ``k`` the target is where the teacher lands at the segment's end ``s_k``,
running its remaining sub-steps with classifier-free guidance (so guidance is distilled into
the student). The student, initialised from the teacher, must land there in ONE DDIM step
from ``t`` to ``s_k`` without CFG. Segment ends are the student's own ``phases``-step trailing
timesteps, so at inference the student runs ``--steps = phases`` with ``--cfg 1``.

``sample_at="start"`` draws x_t only at the segment starts (the student's inference timesteps);
``sample_at="trajectory"`` takes them on the teacher's own CFG trajectory from pure noise, so the
student learns the states it meets at inference rather than forward-noised data.
``target="consistency"`` is the cheaper MSC variant: one teacher sub-step, then the EMA target
network (the student's EMA weights) to the segment end. The loss is L2 or pseudo-Huber on the
clean-sample estimates implied by both end points (every segment on one scale).

Only the denoiser (2D part + motion modules) is distilled; the reference net and the face
locator are reused, as EchoMimic's released ``*_acc`` weights reuse them.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
from diffusers import DDIMScheduler
from torch import nn

from genhuman.sampling.guidance import apply_guidance, uses_guidance
from genhuman.training.config import DistillConfig
from genhuman.training.dataset import PreparedDataset
from genhuman.training.loop import RunContext, RunResult, run
from genhuman.training.model import Batch, EchoMimicBundle, Keep, enable_gradient_checkpointing

log = logging.getLogger(__name__)

Model = Callable[[torch.Tensor, torch.Tensor, Batch, Keep], torch.Tensor]


# ---------------------------------------------------------------- the trajectory


@dataclass(frozen=True)
class Segments:
    """The teacher's timesteps (descending) and, per segment, its sub-step indices and end."""

    timesteps: tuple[int, ...]
    phases: int

    @classmethod
    def of(cls, scheduler: DDIMScheduler, teacher_steps: int, phases: int) -> "Segments":
        from genhuman.errors import InputError

        if teacher_steps % phases:
            raise InputError(f"--phases {phases} does not divide --teacher-steps {teacher_steps}")
        s = copy.deepcopy(scheduler)  # set_timesteps mutates; the caller's scheduler stays as it was
        s.set_timesteps(teacher_steps)
        return cls(tuple(int(t) for t in s.timesteps), phases)

    @property
    def per_phase(self) -> int:
        return len(self.timesteps) // self.phases

    def timestep(self, index: int) -> int:
        """Teacher timestep ``index``; -1 past the last (the clean end, alpha = final_alpha_cumprod)."""
        return self.timesteps[index] if index < len(self.timesteps) else -1

    def segment_of(self, index: int) -> int:
        return index // self.per_phase

    def end_index(self, segment: int) -> int:
        return (segment + 1) * self.per_phase

    def draw(self, sample_at: str, generator: torch.Generator) -> int:
        """A random teacher sub-step index: any (``segment``) or a segment start (``start``)."""
        if sample_at == "start":
            return int(torch.randint(0, self.phases, (1,), generator=generator)) * self.per_phase
        return int(torch.randint(0, len(self.timesteps), (1,), generator=generator))

    def student_timesteps(self) -> list[int]:
        return [self.timesteps[k * self.per_phase] for k in range(self.phases)]


def alpha_bar(scheduler: DDIMScheduler, t: int) -> torch.Tensor:
    return scheduler.alphas_cumprod[t] if t >= 0 else scheduler.final_alpha_cumprod


def ddim_jump(scheduler: DDIMScheduler, v: torch.Tensor, x: torch.Tensor, t: int, s: int) -> torch.Tensor:
    """One deterministic DDIM (eta 0) step of a v-prediction from timestep ``t`` to ``s`` (-1: the
    clean end). Between consecutive timesteps this is ``scheduler.step(v, t, x).prev_sample``."""
    a_t, a_s = alpha_bar(scheduler, t).to(x), alpha_bar(scheduler, s).to(x)
    x0 = a_t.sqrt() * x - (1 - a_t).sqrt() * v
    eps = a_t.sqrt() * v + (1 - a_t).sqrt() * x
    return a_s.sqrt() * x0 + (1 - a_s).sqrt() * eps


def implied_x0(scheduler: DDIMScheduler, x_t: torch.Tensor, x_s: torch.Tensor, t: int, s: int) -> torch.Tensor:
    """The clean sample a DDIM step from ``(x_t, t)`` must have predicted to land on ``x_s`` at ``s``."""
    a_t, a_s = alpha_bar(scheduler, t).to(x_t), alpha_bar(scheduler, s).to(x_t)
    ratio = ((1 - a_s) / (1 - a_t)).sqrt()
    return (x_s - ratio * x_t) / (a_s.sqrt() - ratio * a_t.sqrt())


def guided(model: Model, x: torch.Tensor, t: int, batch: Batch, guidance: float) -> torch.Tensor:
    """The model's v with CFG, the pipeline's way: one call on ``[uncond rows | cond rows]``, the
    uncond rows without reference, audio or control."""
    b = x.shape[0]
    tt = torch.full((b,), t, dtype=torch.long, device=x.device)
    if not uses_guidance(guidance):
        return model(x, tt, batch, Keep.all(b, x.device)).float()
    doubled = Batch(torch.cat([batch.reference] * 2), torch.cat([batch.latents] * 2), torch.cat([batch.mask] * 2),
                    None if batch.audio is None else torch.cat([batch.audio] * 2))
    out = model(torch.cat([x, x]), torch.cat([tt, tt]), doubled, Keep.cfg(b, x.device)).float()
    return apply_guidance(out[:b], out[b:], guidance)


@torch.no_grad()
def teacher_target(teacher: Model, scheduler: DDIMScheduler, segments: Segments, x: torch.Tensor, index: int,
                   batch: Batch, guidance: float) -> torch.Tensor:
    """Run the teacher's remaining sub-steps of ``index``'s segment with CFG: x at the segment end."""
    end = segments.end_index(segments.segment_of(index))
    for j in range(index, end):
        t = segments.timestep(j)
        x = ddim_jump(scheduler, guided(teacher, x, t, batch, guidance), x, t, segments.timestep(j + 1))
    return x


def distance(a: torch.Tensor, b: torch.Tensor, loss: str, c: float) -> torch.Tensor:
    d = (a - b).float()
    if loss == "pseudo_huber":
        return ((d * d + c * c).sqrt() - c).mean()
    return (d * d).mean()


# ---------------------------------------------------------------- the training step


def distill_loss(config: DistillConfig, dataset: PreparedDataset, teacher: EchoMimicBundle,
                 scheduler: DDIMScheduler) -> Callable[[nn.Module, torch.Generator, RunContext], torch.Tensor]:
    segments = Segments.of(scheduler, config.teacher_steps, config.phases)

    def loss(student: nn.Module, generator: torch.Generator, ctx: RunContext) -> torch.Tensor:
        device = ctx.accelerator.device
        if teacher.denoising_unet.conv_in.weight.device != device:  # the frozen teacher is not prepared
            teacher.to(device)
        batch = dataset.batch(ctx.step, config.batch_size, config.frames, True, seed=config.seed,
                              process=ctx.accelerator.process_index).to(device)
        if config.sample_at == "trajectory":
            return trajectory_loss(config, teacher, student, scheduler, segments, batch, generator)
        index = segments.draw(config.sample_at, generator)
        t, end = segments.timestep(index), segments.end_index(segments.segment_of(index))
        s = segments.timestep(end)
        noise = torch.randn(batch.latents.shape, generator=generator).to(device)
        x_t = scheduler.add_noise(batch.latents.float(), noise, torch.tensor([t], device=device))
        if config.target == "teacher" or index + 1 == end:
            target = teacher_target(teacher, scheduler, segments, x_t, index, batch, config.guidance)
        else:
            nxt = segments.timestep(index + 1)
            with torch.no_grad():
                x_next = ddim_jump(scheduler, guided(teacher, x_t, t, batch, config.guidance), x_t, t, nxt)
                v_ema = ctx.with_ema_weights(lambda: guided(student, x_next, nxt, batch, 1.0))
                target = ddim_jump(scheduler, v_ema, x_next, nxt, s)
        v = guided(student, x_t, t, batch, 1.0)
        landed = ddim_jump(scheduler, v, x_t, t, s)
        return distance(implied_x0(scheduler, x_t, landed, t, s), implied_x0(scheduler, x_t, target, t, s),
                        config.loss, config.huber_c)

    return loss


def teacher_trajectory(teacher: Model, scheduler: DDIMScheduler, segments: Segments, noise: torch.Tensor,
                       batch: Batch, guidance: float) -> list[torch.Tensor]:
    """The teacher's CFG trajectory from pure noise (the inference start) at every segment start and at
    the clean end: ``phases + 1`` states."""
    x = scheduler.add_noise(torch.zeros_like(noise), noise, torch.tensor([segments.timestep(0)]).to(noise.device))
    states = [x]
    for k in range(segments.phases):
        x = teacher_target(teacher, scheduler, segments, x, k * segments.per_phase, batch, guidance)
        states.append(x)
    return states


def trajectory_loss(config: DistillConfig, teacher: Model, student: nn.Module, scheduler: DDIMScheduler,
                    segments: Segments, batch: Batch, generator: torch.Generator) -> torch.Tensor:
    """Every segment of one teacher trajectory: from its start on the trajectory, the student's single
    step must land on the trajectory at the segment's end (mean over segments)."""
    noise = torch.randn(batch.latents.shape, generator=generator).to(batch.latents.device)
    states = teacher_trajectory(teacher, scheduler, segments, noise.float(), batch, config.guidance)
    losses = []
    for k in range(segments.phases):
        t, s = segments.timestep(k * segments.per_phase), segments.timestep(segments.end_index(k))
        landed = ddim_jump(scheduler, guided(student, states[k], t, batch, 1.0), states[k], t, s)
        losses.append(distance(implied_x0(scheduler, states[k], landed, t, s),
                               implied_x0(scheduler, states[k], states[k + 1], t, s), config.loss, config.huber_c))
    return torch.stack(losses).mean()


def student_of(teacher: EchoMimicBundle) -> EchoMimicBundle:
    """A copy of the teacher's denoiser to train; the reference net and face locator are shared, frozen."""
    student = EchoMimicBundle(teacher.reference_unet, copy.deepcopy(teacher.denoising_unet),
                              teacher.condition_encoder)
    student.requires_grad_(False)
    student.denoising_unet.requires_grad_(True)
    return student


def distill(config: DistillConfig, teacher_dir: str, data_dir: Path, out: Path, resume: Optional[str] = None,
            progress: bool = True, stop_after: Optional[int] = None,
            dataset: Optional[PreparedDataset] = None) -> RunResult:
    from genhuman.sampling import echomimic_scheduler
    from genhuman.training.runner import apply_lora, bundle_of, check_tokens, load_components, weights_saver

    scheduler = echomimic_scheduler()
    Segments.of(scheduler, config.teacher_steps, config.phases)  # refuse a bad split before loading anything
    components = load_components(teacher_dir, "--teacher")
    if dataset is None:
        dataset = PreparedDataset(data_dir, components.vae, progress=progress)
    check_tokens(dataset, components.denoising_unet)
    teacher = bundle_of(components).float().eval().requires_grad_(False)
    student = student_of(teacher)
    if config.lora_rank:
        trainable = [f"denoising_unet.{n}" for n, _ in student.denoising_unet.named_parameters()]
        apply_lora(student, trainable, config.lora_rank, config.lora_alpha)
    if config.gradient_checkpointing:
        enable_gradient_checkpointing(student)
    config.save(out)
    save = weights_saver(components, "acc", teacher={"denoising_unet": teacher.denoising_unet})
    log.info("distilling %d teacher steps into %d phases (student timesteps %s)", config.teacher_steps,
             config.phases, Segments.of(scheduler, config.teacher_steps, config.phases).student_timesteps())
    return run(out=out, config=config, model=student, loss_fn=distill_loss(config, dataset, teacher, scheduler),
               save_weights=save, resume=resume, progress=progress, stop_after=stop_after)
