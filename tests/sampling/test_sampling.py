import pytest
import torch

from genhuman.errors import Cancelled
from genhuman.sampling import (
    WindowSchedule,
    apply_guidance,
    denoise,
    echomimic_scheduler,
    initial_noise,
    predict_windows,
)


def test_scheduler_matches_official_timesteps():
    s = echomimic_scheduler()
    s.set_timesteps(6)
    assert s.timesteps.tolist() == [999, 832, 666, 499, 332, 166]
    s.set_timesteps(30)
    assert s.timesteps[:3].tolist() == [999, 966, 932] and s.timesteps[-1] == 32
    assert float(s.alphas_cumprod[-1]) == 0.0  # zero terminal SNR
    assert s.config.prediction_type == "v_prediction" and s.config.beta_schedule == "linear"


def test_official_windows_for_100_frames():
    w = WindowSchedule().windows(100)
    assert [x[0] for x in w] == list(range(0, 100, 9))
    assert w[-1] == [99] + list(range(0, 11))
    shifted = WindowSchedule(shift=2).windows(100, step_index=3)
    assert shifted[0] == list(range(6, 18))


@pytest.mark.parametrize("circular", [True, False])
def test_every_frame_covered(circular):
    sched = WindowSchedule(circular=circular)
    for n in [1, 5, 12, 13, 20, 21, 22, 100]:
        for step in range(4):
            windows = sched.windows(n, step)
            assert {f for w in windows for f in w} == set(range(n))
            assert all(len(w) == min(n, 12) and len(set(w)) == len(w) for w in windows)


def _constant_predict(uncond_value, cond_value, calls=None):
    def predict(sample, t, frames, uncond):
        if calls is not None:
            calls.append((sample.shape[0], uncond.tolist()))
        out = torch.full_like(sample, cond_value)
        out[uncond] = uncond_value
        return out
    return predict


@pytest.mark.parametrize("window_batch", [1, 3, 16])
@pytest.mark.parametrize("frames", [7, 30])
def test_constant_prediction_blends_exactly(window_batch, frames):
    latents = torch.randn(1, 4, frames, 2, 2)
    windows = WindowSchedule().windows(frames, 1)
    plain = predict_windows(latents, torch.tensor(999), windows, _constant_predict(-5.0, 0.75), 1.0, window_batch)
    assert torch.equal(plain, torch.full_like(plain, 0.75))  # weights sum to 1 per frame
    guided = predict_windows(latents, torch.tensor(999), windows, _constant_predict(-5.0, 0.75), 2.5, window_batch)
    torch.testing.assert_close(guided, torch.full_like(guided, -5.0 + 2.5 * (0.75 + 5.0)))


def test_average_is_the_mean_over_covering_windows():
    frames = 25
    latents = torch.zeros(1, 1, frames, 1, 1)
    windows = WindowSchedule().windows(frames, 2)

    def window_id(sample, t, idx, uncond):  # each window predicts its own first index
        return idx[:, :1].float().view(-1, 1, 1, 1, 1).expand_as(sample).clone()

    got = predict_windows(latents, torch.tensor(1), windows, window_id, 1.0, 4).flatten()
    for f in range(frames):
        covering = [w[0] for w in windows if f in w]
        assert got[f].item() == pytest.approx(sum(covering) / len(covering))


def test_cfg_one_skips_the_unconditional_pass_and_equals_no_guidance():
    latents = torch.randn(1, 4, 20, 2, 2)
    windows = WindowSchedule().windows(20)
    calls = []
    out = predict_windows(latents, torch.tensor(5), windows, _constant_predict(9.0, 1.0, calls), 1.0, 2)
    assert all(not any(mask) for _, mask in calls)
    assert torch.equal(out, torch.ones_like(out))
    calls.clear()
    predict_windows(latents, torch.tensor(5), windows, _constant_predict(9.0, 1.0, calls), 2.0, 2)
    assert calls[0] == (4, [True, True, False, False])  # uncond rows first, one call


def test_identical_cond_and_uncond_give_the_cond_prediction():
    latents = torch.randn(1, 4, 15, 2, 2)

    def ignores_uncond(sample, t, frames, uncond):
        return sample * 2 + sample.mean(dim=(1, 2, 3, 4), keepdim=True)

    windows = WindowSchedule().windows(15)
    a = predict_windows(latents, torch.tensor(3), windows, ignores_uncond, 3.5, 2)
    b = predict_windows(latents, torch.tensor(3), windows, ignores_uncond, 1.0, 1)
    torch.testing.assert_close(a, b)
    assert torch.equal(apply_guidance(torch.ones(2), torch.ones(2), 7.0), torch.ones(2))


def test_window_batch_does_not_change_the_result():
    latents = torch.randn(1, 4, 40, 2, 2)

    def per_row(sample, t, frames, uncond):
        return torch.tanh(sample) + uncond.float().view(-1, 1, 1, 1, 1)

    windows = WindowSchedule().windows(40, 1)
    ref = predict_windows(latents, torch.tensor(3), windows, per_row, 2.5, 1)
    torch.testing.assert_close(predict_windows(latents, torch.tensor(3), windows, per_row, 2.5, 5), ref)


def test_initial_noise_is_seeded_and_clamped():
    a = initial_noise((1, 4, 30, 8, 8), seed=420)
    expected = torch.randn(1, 4, 30, 8, 8, generator=torch.Generator().manual_seed(420)).clamp(-1.5, 1.5)
    assert torch.equal(a, expected)
    assert a.abs().max() <= 1.5


def test_denoise_runs_reports_progress_and_cancels():
    latents = initial_noise((1, 4, 14, 2, 2), seed=0)

    def predict(sample, t, frames, uncond):
        return 0.1 * sample

    seen = []
    out1 = denoise(latents, echomimic_scheduler(), predict, steps=3, guidance_scale=2.5,
                   progress=lambda f, m: seen.append(f))
    out2 = denoise(latents, echomimic_scheduler(), predict, steps=3, guidance_scale=2.5)
    assert torch.equal(out1, out2) and out1.shape == latents.shape
    assert seen == pytest.approx([1 / 3, 2 / 3, 1.0])
    # One DDIM step from t=999 (alpha_bar 0, v-prediction): x0 = -v, and the previous
    # alpha_bar is 1 (set_alpha_to_one), so the result is x0 = -0.1 x exactly.
    one = denoise(latents, echomimic_scheduler(), predict, steps=1, guidance_scale=1.0)
    torch.testing.assert_close(one, -0.1 * latents)
    with pytest.raises(Cancelled):
        denoise(latents, echomimic_scheduler(), predict, steps=3, guidance_scale=1.0, should_cancel=lambda: True)
