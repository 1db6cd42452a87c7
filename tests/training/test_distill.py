"""Phased distillation: the trajectory split, the DDIM jump, the segment target by hand, a run."""

from __future__ import annotations

import pytest
import torch

from genhuman.errors import InputError
from genhuman.sampling import echomimic_scheduler
from genhuman.sampling.guidance import apply_guidance
from genhuman.training.config import DistillConfig
from genhuman.training.distill import (
    Segments,
    ddim_jump,
    distill,
    implied_x0,
    student_of,
    teacher_target,
    teacher_trajectory,
    trajectory_loss,
)
from genhuman.training.model import Keep
from genhuman.training.runner import bundle_of, load_components


def test_segments_end_on_the_students_own_timesteps():
    segments = Segments.of(echomimic_scheduler(), 40, 4)
    student = echomimic_scheduler()
    student.set_timesteps(4)
    assert segments.student_timesteps() == [int(t) for t in student.timesteps] == [999, 749, 499, 249]
    assert [segments.timestep(segments.end_index(k)) for k in range(4)] == [749, 499, 249, -1]
    assert segments.segment_of(9) == 0 and segments.segment_of(10) == 1


def test_sampling_at_segment_starts_draws_only_the_students_timesteps():
    segments = Segments.of(echomimic_scheduler(), 40, 4)
    g = torch.Generator().manual_seed(0)
    starts = {segments.draw("start", g) for _ in range(200)}
    anywhere = {segments.draw("segment", g) for _ in range(400)}
    assert starts == {0, 10, 20, 30}
    assert [segments.timestep(i) for i in sorted(starts)] == segments.student_timesteps()
    assert len(anywhere) == 40  # every sub-step of every segment
    with pytest.raises(InputError, match="sample_at must be one of segment, start, trajectory, got 'middle'"):
        DistillConfig(sample_at="middle").check()


def test_phases_must_divide_teacher_steps():
    with pytest.raises(InputError, match="--phases 6 does not divide --teacher-steps 40"):
        DistillConfig(phases=6, teacher_steps=40).check()
    with pytest.raises(InputError, match="does not divide"):
        Segments.of(echomimic_scheduler(), 40, 6)


def test_ddim_jump_between_neighbours_is_the_schedulers_step():
    scheduler = echomimic_scheduler()
    scheduler.set_timesteps(40)
    g = torch.Generator().manual_seed(0)
    x, v = torch.randn(1, 4, 2, 3, 3, generator=g), torch.randn(1, 4, 2, 3, 3, generator=g)
    ts = [int(t) for t in scheduler.timesteps]
    for i in (0, 17, 39):
        s = ts[i + 1] if i + 1 < len(ts) else -1
        expected = scheduler.step(v, ts[i], x).prev_sample
        torch.testing.assert_close(ddim_jump(scheduler, v, x, ts[i], s), expected, rtol=1e-5, atol=1e-6)
    # the x0 a jump implies is the one the jump used
    x_s = ddim_jump(scheduler, v, x, 749, 499)
    a = scheduler.alphas_cumprod[749]
    torch.testing.assert_close(implied_x0(scheduler, x, x_s, 749, 499), a.sqrt() * x - (1 - a).sqrt() * v,
                               rtol=1e-4, atol=1e-5)


def test_segment_target_equals_the_teachers_sub_steps_by_hand(weights, dataset):
    teacher = bundle_of(load_components(str(weights))).eval()
    scheduler = echomimic_scheduler()
    segments = Segments.of(scheduler, 8, 2)  # 2 segments of 4 sub-steps
    batch = dataset.batch(0, 1, 3, True, seed=0)
    x = torch.randn(batch.latents.shape, generator=torch.Generator().manual_seed(1))
    got = teacher_target(teacher, scheduler, segments, x, 5, batch, 2.5)  # sub-steps 5, 6, 7 of segment 1

    by_hand = echomimic_scheduler()
    by_hand.set_timesteps(8)
    y = x.clone()
    with torch.no_grad():
        for t in by_hand.timesteps[5:]:  # separate uncond and cond calls, diffusers' own step
            tt = torch.tensor([int(t)])
            uncond = teacher(y, tt, batch, Keep.none(1))
            cond = teacher(y, tt, batch, Keep.all(1))
            y = by_hand.step(apply_guidance(uncond, cond, 2.5), t, y).prev_sample
    scale = y.abs().max()
    torch.testing.assert_close(got, y, rtol=0, atol=1e-4 * float(scale))
    first = teacher_target(teacher, scheduler, segments, x, 2, batch, 2.5)  # segment 0 stops at sub-step 4
    assert not torch.allclose(first, got)


def test_trajectory_starts_from_noise_and_follows_the_teacher(weights, dataset):
    """The states are the inference run's: pure noise, then the teacher's CFG sub-steps segment by segment."""
    teacher = bundle_of(load_components(str(weights))).eval()
    scheduler = echomimic_scheduler()
    segments = Segments.of(scheduler, 4, 2)
    batch = dataset.batch(0, 1, 3, True, seed=0)
    noise = torch.randn(batch.latents.shape, generator=torch.Generator().manual_seed(2))
    states = teacher_trajectory(teacher, scheduler, segments, noise, batch, 2.5)
    assert len(states) == 3 and torch.equal(states[0], noise)  # zero-SNR: t = 999 is pure noise
    by_hand = echomimic_scheduler()
    by_hand.set_timesteps(4)
    y = noise.clone()
    with torch.no_grad():
        for i, t in enumerate(by_hand.timesteps):
            tt = torch.tensor([int(t)])
            y = by_hand.step(apply_guidance(teacher(y, tt, batch, Keep.none(1)), teacher(y, tt, batch, Keep.all(1)),
                                            2.5), t, y).prev_sample
            if i == 1:
                torch.testing.assert_close(states[1], y, rtol=0, atol=1e-4 * float(y.abs().max()))
    torch.testing.assert_close(states[2], y, rtol=0, atol=1e-4 * float(y.abs().max()))


def test_trajectory_loss_is_zero_where_the_student_already_is_the_teacher(weights, dataset):
    """One sub-step per segment and no CFG: the untrained student (a copy of the teacher) lands exactly on
    the teacher's trajectory; with two sub-steps per segment and CFG it does not."""
    teacher = bundle_of(load_components(str(weights))).eval()
    student = student_of(teacher).eval()
    scheduler = echomimic_scheduler()
    batch = dataset.batch(0, 1, 3, True, seed=0)
    with torch.no_grad():
        same = trajectory_loss(DistillConfig(phases=2, teacher_steps=2, guidance=1.0, sample_at="trajectory"),
                               teacher, student, scheduler, Segments.of(scheduler, 2, 2), batch,
                               torch.Generator().manual_seed(0))
        other = trajectory_loss(DistillConfig(phases=2, teacher_steps=4, guidance=2.5, sample_at="trajectory"),
                                teacher, student, scheduler, Segments.of(scheduler, 4, 2), batch,
                                torch.Generator().manual_seed(0))
    assert float(same) <= 1e-10 and float(other) > 1e-6


@pytest.fixture(scope="module")
def distilled(weights, prepared, dataset, tmp_path_factory):
    config = DistillConfig(phases=2, teacher_steps=4, steps=2, batch_size=1, frames=3, learning_rate=1e-4,
                           target="consistency", loss="pseudo_huber")
    return distill(config, str(weights), prepared, tmp_path_factory.mktemp("distill"), progress=False,
                   dataset=dataset)


def test_distill_run_writes_acc_weights_in_both_layouts(weights, distilled):
    from genhuman.checkpoints import load_echomimic

    result = distilled
    assert result.steps == 2 and all(torch.isfinite(torch.tensor(result.losses)))
    converted = load_echomimic(result.checkpoint / "genhuman")
    assert converted.variant.name == "acc"
    official = result.checkpoint / "official"
    acc, base = load_echomimic(official, "acc"), load_echomimic(official, "audio")
    teacher = load_echomimic(weights)
    same = [torch.equal(a, b) for a, b in zip(base.denoising_unet.state_dict().values(),
                                              teacher.denoising_unet.state_dict().values())]
    moved = [torch.equal(a, b) for a, b in zip(acc.denoising_unet.state_dict().values(),
                                               teacher.denoising_unet.state_dict().values())]
    assert all(same) and not all(moved)


def test_the_student_runs_in_the_engines_accelerated_path(distilled, portrait_path, speech_path, tmp_path, capsys):
    from genhuman.cli import main
    from genhuman.media import load_audio, read_video_info, save_wav

    speech = tmp_path / "short.wav"
    save_wav(speech, load_audio(speech_path)[:8000])
    out = tmp_path / "acc.mp4"
    code = main(["animate", str(portrait_path), str(speech), "--engine", "echomimic", "--weights",
                 str(distilled.checkpoint / "official"), "--accelerated", "--steps", "2", "-o", str(out),
                 "--width", "64", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert read_video_info(out).frames == 12
