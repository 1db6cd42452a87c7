"""Behaviour of the tiny networks: shapes, reference caching, CFG batching, audio, dtypes, I/O."""

import copy

import pytest
import torch

from tests.numeric import assert_close, differs

from genhuman.models import EchoUNet3D, ReferenceUNet2D, UNet3DConfig, UNetConfig
from genhuman.models.attention import TransformerBlock

B, F, H, W = 2, 3, 8, 8


@pytest.fixture(scope="module")
def inputs(tiny_models):
    ref, den, enc = tiny_models
    g = torch.Generator().manual_seed(5)
    latent = torch.randn(1, 4, H, W, generator=g)
    sample = torch.randn(B, 4, F, H, W, generator=g)
    audio = torch.randn(B, F, 50, 384, generator=g)
    cond = enc(torch.rand(B, 1, 1, H * 8, W * 8, generator=g))
    with torch.no_grad():
        bank = ref(latent)
    return bank, sample, audio, cond


def test_shapes_and_bank_names(tiny_models, inputs):
    ref, den, enc = tiny_models
    bank, sample, audio, cond = inputs
    block_names = {m.block_name for m in den.modules() if isinstance(m, TransformerBlock)}
    assert set(bank) == block_names == {
        "down_blocks.0.attentions.0.transformer_blocks.0", "mid_block.attentions.0.transformer_blocks.0",
        "up_blocks.1.attentions.0.transformer_blocks.0", "up_blocks.1.attentions.1.transformer_blocks.0"}
    assert bank["mid_block.attentions.0.transformer_blocks.0"].shape == (1, (H // 2) * (W // 2), 64)
    assert cond.shape == (B, 32, 1, H, W)
    with torch.no_grad():
        out = den(sample, 500, audio, cond, den.prepare_reference(bank))
    assert out.shape == (B, 4, F, H, W)
    assert torch.isfinite(out).all()


def naive_self_attention(bank):
    """Official read mode: K/V = attn1 projections of [own normed tokens ; bank repeated over frames]."""

    def forward(self, n, ctx):
        if ctx.reference is None:
            return self.attn1(n)
        tokens = bank[self.block_name].repeat(n.shape[0], 1, 1)
        return self.attn1(n, encoder_hidden_states=torch.cat([n, tokens], dim=1))  # diffusers' own processor

    return forward


def test_cached_reference_equals_naive_reprojection(tiny_models, inputs, monkeypatch):
    _, den, _ = tiny_models
    bank, sample, audio, cond = inputs
    with torch.no_grad():
        fast = den(sample, 321, audio, cond, den.prepare_reference(bank))
        monkeypatch.setattr(TransformerBlock, "_self_attention", naive_self_attention(bank))
        naive = den(sample, 321, audio, cond, den.prepare_reference(bank))
    assert_close(fast, naive)
    with torch.no_grad():  # and the reference really matters
        assert differs(fast, den(sample, 321, audio, cond, None))


def test_cfg_batch_equals_two_forwards(tiny_models, inputs):
    _, den, _ = tiny_models
    bank, sample, audio, cond = inputs
    kv = den.prepare_reference(bank)
    x = sample[:1].repeat(2, 1, 1, 1, 1)
    a = torch.cat([torch.zeros_like(audio[:1]), audio[:1]])
    c = torch.cat([torch.zeros_like(cond[:1]), cond[:1]])
    with torch.no_grad():
        both = den(x, 700, a, c, kv, use_reference=torch.tensor([False, True]))
        uncond = den(x[:1], 700, a[:1], c[:1], None)
        cond_only = den(x[1:], 700, a[1:], c[1:], kv)
    assert_close(both[:1], uncond)
    assert_close(both[1:], cond_only)
    with torch.no_grad():  # a plain list of flags (no host sync) means the same
        assert torch.equal(den(x, 700, a, c, kv, use_reference=[False, True]), both)


def test_no_audio_equals_zero_audio(tiny_models, inputs):
    _, den, _ = tiny_models
    bank, sample, audio, cond = inputs
    kv = den.prepare_reference(bank)
    with torch.no_grad():
        none = den(sample, 10, None, cond, kv)
        zeros = den(sample, 10, torch.zeros_like(audio), cond, kv)
        spoken = den(sample, 10, audio, cond, kv)
    assert_close(none, zeros)
    assert differs(none, spoken)


def test_single_frame_condition_broadcasts(tiny_models, inputs):
    _, den, _ = tiny_models
    bank, sample, audio, cond = inputs
    with torch.no_grad():
        once = den(sample, 10, audio, cond, None)
        per_frame = den(sample, 10, audio, cond.expand(-1, -1, F, -1, -1).contiguous(), None)
    assert torch.equal(once, per_frame)


def test_motion_modules_mix_frames_and_timestep_per_sample(tiny_models, inputs):
    _, den, _ = tiny_models
    bank, sample, audio, cond = inputs
    changed = sample.clone()
    changed[:, :, -1] += 1.0
    with torch.no_grad():
        base = den(sample, 10, audio, cond, None)
        moved = den(changed, 10, audio, cond, None)
        per_sample = den(sample, torch.tensor([10, 900]), audio, cond, None)
        second = den(sample[1:], 900, audio[1:], cond[1:], None)
    assert differs(base[:, :, 0], moved[:, :, 0])  # frame 0 sees frame 2
    assert_close(per_sample[:1], base[:1])
    assert_close(per_sample[1:], second)


def test_bfloat16_forward_is_finite(tiny_models, inputs):
    ref, den, _ = tiny_models
    bank, sample, audio, cond = inputs
    den16, ref16 = copy.deepcopy(den).to(torch.bfloat16), copy.deepcopy(ref).to(torch.bfloat16)
    with torch.no_grad():
        kv = den16.prepare_reference(ref16(torch.randn(1, 4, H, W, dtype=torch.bfloat16)))
        out = den16(sample.bfloat16(), 999, audio.bfloat16(), cond, kv, torch.tensor([False, True]))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()


def test_save_load_round_trip_is_exact(tiny_models, inputs, tmp_path):
    ref, den, _ = tiny_models
    bank, sample, audio, cond = inputs
    den.save_pretrained(tmp_path / "den")
    ref.save_pretrained(tmp_path / "ref")
    den2 = EchoUNet3D.from_pretrained(tmp_path / "den")
    ref2 = ReferenceUNet2D.from_pretrained(tmp_path / "ref")
    assert den2.config == den.config
    with torch.no_grad():
        bank2 = ref2(torch.zeros(1, 4, H, W))
        assert all(torch.equal(bank2[k], v) for k, v in ref(torch.zeros(1, 4, H, W)).items())
        assert torch.equal(den2(sample, 5, audio, cond, den2.prepare_reference(bank)),
                           den(sample, 5, audio, cond, den.prepare_reference(bank)))


def test_strict_loading_names_missing_keys(tiny_models):
    _, den, _ = tiny_models
    state = dict(den.state_dict())
    del state["conv_out.weight"]
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"1 missing \(e.g. conv_out.weight\); 1 unexpected \(e.g. extra.weight\)"):
        EchoUNet3D.from_state_dict(den.config, state)


def test_four_level_geometry_with_odd_latent_size():
    """The official 4-level layout (tiny widths) on 10x12 latents: 10 -> 5 -> 3 -> 2 and back."""
    torch.manual_seed(0)
    levels = dict(block_out_channels=(16, 16, 32, 32), attention_blocks=(True, True, True, False),
                  layers_per_block=2, norm_num_groups=4)
    ref = ReferenceUNet2D(UNetConfig.tiny(**levels)).eval()
    den = EchoUNet3D(UNet3DConfig.tiny(**levels, cross_attention_dim=8)).eval()
    with torch.no_grad():
        bank = ref(torch.randn(1, 4, 10, 12))
        assert len(bank) == 16  # 2 x 3 down + 1 mid + 3 x 3 up, as SD-1.5
        out = den(torch.randn(1, 4, 2, 10, 12), 3, torch.randn(1, 2, 50, 8), None, den.prepare_reference(bank))
    assert out.shape == (1, 4, 2, 10, 12)
