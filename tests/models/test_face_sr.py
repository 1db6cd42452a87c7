"""Hallo2's temporal face restorer (spec hallo.md 2.4): full-size keys equal net_g.pth's
params_ema, the block indices the official code hard-codes, a tiny 16-frame window, the
temporal layers mixing frames, and a strict round trip through a net_g.pth-layout file."""

import pytest
import torch

from tests.models.conftest import randomize
from tests.models.test_keys import official, shapes
from tests.numeric import differs

from genhuman.checkpoints.face_sr import (face_sr_config, face_sr_file, load_face_sr, read_face_sr_state,
                                         save_tiny_face_sr)
from genhuman.errors import InputError, MissingWeightsError
from genhuman.models.face_sr import FaceSRConfig, TemporalFaceSR, adain

FRAMES = 16  # the official window
TINY = FaceSRConfig.tiny()


@pytest.fixture(scope="module")
def full_size():
    with torch.device("meta"):
        return TemporalFaceSR(FaceSRConfig.hallo2())


def test_full_size_keys_equal_official_net_g(full_size):
    expected = official("hallo2_net_g_keys.tsv")
    assert len(expected) == 623
    assert shapes(full_size) == expected
    assert shapes(full_size)["ft_layers.8.temp_attn.in_proj_weight"] == (1536, 512)


def test_skip_and_fuse_blocks_are_the_official_indices(full_size):
    # codeformer_arch's fuse_encoder_block / fuse_generator_block tables
    assert full_size.encoder.skip_after == {512: 2, 256: 5, 128: 8, 64: 11, 32: 14, 16: 18}
    assert full_size.generator.fuse_after == {16: 6, 32: 9, 64: 12, 128: 15, 256: 18, 512: 21}


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return randomize(TemporalFaceSR(TINY), 5)


def window(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, FRAMES, 3, TINY.image_size, TINY.image_size, generator=g) * 2 - 1


def test_geometry_is_read_off_the_shapes(full_size):
    assert face_sr_config(full_size.state_dict()) == FaceSRConfig.hallo2()
    other = FaceSRConfig(image_size=64, base_channels=32, channel_mult=(1, 2, 4), res_blocks=1,
                         attn_resolutions=(32, 16), codebook_size=8, code_dim=4, dim_embd=16, n_layers=3,
                         connect_list=(32,))
    with torch.device("meta"):
        assert face_sr_config(TemporalFaceSR(other).state_dict()) == other


def test_tiny_window_keeps_its_shape_and_fidelity_matters(net):
    faces = window(1)
    with torch.no_grad():
        out = net(faces, w=0.5)
        codebook_only = net(faces, w=0.0)
    assert out.shape == faces.shape
    assert torch.isfinite(out).all()
    assert differs(out, codebook_only)


def test_temporal_layers_mix_frames(net):
    faces = window(2)
    lq, _ = net.encode(faces.flatten(0, 1))
    changed = lq.clone()
    changed[0] += 1.0  # only frame 0's features
    with torch.no_grad():
        a, b = net.code_logits(lq, FRAMES), net.code_logits(changed, FRAMES)
    assert differs(a[1:], b[1:])  # frames 1..15 see frame 0 through the temporal attention
    # frames of different windows (batch entries) do not mix
    with torch.no_grad():
        two = net.code_logits(torch.cat([lq, changed]), FRAMES)
    torch.testing.assert_close(two[:FRAMES], a, rtol=1e-5, atol=1e-5)


def test_without_temporal_attention_frames_stay_independent(net):
    # the control: a window of one frame each gives frame 1 the same logits whatever frame 0 holds
    lq, _ = net.encode(window(3).flatten(0, 1)[:2])
    changed = lq.clone()
    changed[0] += 1.0
    with torch.no_grad():
        a, b = net.code_logits(lq, 1), net.code_logits(changed, 1)
    torch.testing.assert_close(a[1], b[1], rtol=1e-5, atol=1e-5)


def test_adain_matches_style_statistics():
    g = torch.Generator().manual_seed(4)
    content, style = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g) * 3 + 2
    out = adain(content, style)
    torch.testing.assert_close(out.flatten(2).mean(2), style.flatten(2).mean(2), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.flatten(2).std(2), style.flatten(2).std(2), rtol=1e-3, atol=1e-3)


def test_net_g_round_trip_loads_strictly_and_gives_identical_outputs(tmp_path):
    path = save_tiny_face_sr(tmp_path / "hallo2" / "net_g.pth", seed=9)
    assert face_sr_file(tmp_path) == path
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"params_ema"}
    loaded = load_face_sr(path)  # the geometry read off the shapes
    assert loaded.config == TINY
    fresh = TemporalFaceSR(TINY).eval()
    fresh.load_state_dict(raw["params_ema"], strict=True)
    faces = window(5)
    with torch.no_grad():
        assert torch.equal(loaded(faces, w=1.0), fresh(faces, w=1.0))


def test_wrong_files_are_one_line_input_errors(tmp_path):
    with pytest.raises(MissingWeightsError, match=r"hallo2/net_g.pth is missing"):
        face_sr_file(tmp_path)
    flat = tmp_path / "flat.pth"
    torch.save({"weight": torch.zeros(1)}, flat)
    with pytest.raises(InputError, match=r"^flat.pth is not a Hallo2 net_g.pth: it has no 'params_ema' state dict "
                                         r"\(found weight\)$"):
        read_face_sr_state(flat)
    tiny = save_tiny_face_sr(tmp_path / "tiny" / "net_g.pth")
    with pytest.raises(InputError, match=r"^tiny/net_g.pth does not match the model: .*wrong shape"):
        load_face_sr(tiny, FaceSRConfig.hallo2())  # a tiny file against the full-size geometry
    with pytest.raises(InputError, match=r"^flat.pth is not a Hallo2 net_g.pth: its network shapes are incomplete$"):
        face_sr_config({"weight": torch.zeros(1)}, what="flat.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a pickle")
    with pytest.raises(InputError, match=r"^cannot read weights garbage.pth"):
        read_face_sr_state(garbage)
