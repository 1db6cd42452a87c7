"""Full-size key sets on the meta device against the spec's TSVs; the name map; strict loading messages."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from genhuman.checkpoints.echomimic_v3 import (is_audio_key, load_transformer, official_state_names, to_official,
                                               to_ours)
from genhuman.errors import InputError, MissingWeightsError
from genhuman.models.echomimic_v3 import (EchoMimicV3Config, EchoMimicV3Transformer, flash_audio_windows,
                                          preview_window_ranges)
from genhuman.pipelines.echomimic_v3 import dynamic_scale

from .official import official_weights, write_official_folder

KEYS = Path("/work/shared/spec/keys/echomimic_v3")
if not KEYS.is_dir():  # the spec folder travels beside the repository
    KEYS = Path(__file__).resolve().parents[3] / "shared/spec/keys/echomimic_v3"


def tsv(name: str) -> dict[str, tuple[int, ...]]:
    out = {}
    for line in (KEYS / name).read_text().splitlines():
        key, shape, _ = line.split("\t")
        out[key] = tuple(int(x) for x in shape.strip("()").split(",") if x.strip())
    return out


@pytest.fixture(scope="module")
def full_size():
    out = {}
    for flash in (False, True):
        with torch.device("meta"):
            model = EchoMimicV3Transformer(EchoMimicV3Config(flash=flash))
        names = official_state_names(model)
        state = model.state_dict()
        out[flash] = {k: tuple(state[v].shape) for k, v in names.items()}
    return out


needs_keys = pytest.mark.skipif(not KEYS.is_dir(), reason="spec key lists not present")


@needs_keys
@pytest.mark.parametrize("flash, name", [(False, "echomimicv3_preview_transformer.tsv"),
                                         (True, "echomimicv3_flash_transformer.tsv")])
def test_full_size_keys_and_shapes_equal_the_spec(full_size, flash, name):
    assert full_size[flash] == tsv(name)


@needs_keys
def test_base_and_added_keys_equal_the_spec(full_size):
    base = tsv("wan21_fun_v1.1_1.3b_inp_transformer.tsv")
    for flash, added in ((False, "echomimicv3_preview_added_vs_wan_i2v.tsv"),
                         (True, "echomimicv3_flash_added_vs_wan_i2v.tsv")):
        ours = full_size[flash]
        assert {k: v for k, v in ours.items() if not is_audio_key(k)} == base
        assert {k: v for k, v in ours.items() if is_audio_key(k)} == tsv(added)
    assert sum(1 for k in full_size[False] if is_audio_key(k)) == 93  # the official "missing keys: 93"


def test_name_map_round_trips(full_size):
    for flash in (False, True):
        for official in full_size[flash]:
            ours = to_ours(official)
            assert ours is not None and to_official(ours, flash) == official
    assert to_ours("blocks.3.cross_attn.k_img.weight") == "wan.blocks.3.attn2.add_k_proj.weight"
    assert to_ours("blocks.3.norm3.bias") == "wan.blocks.3.norm2.bias"
    assert to_ours("head.modulation") == "wan.scale_shift_table"
    assert to_ours("no.such.key") is None


def test_loaded_tensors_are_the_official_ones(tmp_path):
    _, state = official_weights("preview")
    model = load_transformer(write_official_folder(tmp_path, "preview"), flash=False)
    ours = model.state_dict()
    for official in ("blocks.1.cross_attn.k_audio.weight", "img_emb.proj.3.weight", "head.modulation",
                     "blocks.0.ffn.2.bias", "audio2token.norm.weight"):
        assert torch.equal(ours[to_ours(official)], state[official])


def test_incomplete_folder_is_one_line(tmp_path):
    write_official_folder(tmp_path, "preview")
    (tmp_path / "transformer/diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(MissingWeightsError) as err:
        load_transformer(tmp_path, flash=False)
    assert "missing transformer/diffusion_pytorch_model.safetensors" in str(err.value)
    assert "\n" not in str(err.value)


def test_base_without_echomimic_weights_names_the_audio_keys(tmp_path):
    write_official_folder(tmp_path, "preview", base_only=True)
    # tiny: 2 blocks x (k_audio, v_audio, norm_k_audio) + audio2token (proj, norm weight, norm bias) = 9
    with pytest.raises(InputError, match=r"lacks 9 EchoMimicV3 audio key\(s\).*not the EchoMimicV3 preview"):
        load_transformer(tmp_path, flash=False)


def test_incomplete_base_and_wrong_family(tmp_path):
    write_official_folder(tmp_path / "a", "preview", drop_base_key="blocks.1.ffn.0.weight")
    # the EchoMimicV3 file holds every key, so the base gap is filled from it (official order: base, then it)
    load_transformer(tmp_path / "a", flash=False)
    write_official_folder(tmp_path / "b", "flash")
    with pytest.raises(InputError, match="does not have.*preview folder"):
        load_transformer(tmp_path / "b", flash=False)


def test_preview_windows_and_flash_windows():
    # 9 frames = 18 tokens -> 3 latent frames; by hand from split_audio_sequence: centres 5 and 13, half 4,
    # first range [-7, 1]; then +-4
    assert preview_window_ranges(2 * 9) == [(-11, 5), (-3, 13), (5, 21)]
    audio = torch.arange(9.0).view(1, 9, 1, 1, 1).expand(1, 9, 5, 1, 1) * 10 + torch.arange(5.0).view(1, 1, 5, 1, 1)
    first, later = flash_audio_windows(audio, 5)
    assert first.shape == (1, 1, 5, 1, 1) and later.shape == (1, 2, 8, 1, 1)
    # latent frame 1 = video frames 1..4: windows 0..2 of frame 1, centre of 2 and 3, windows 2..4 of frame 4
    assert later[0, 0, :, 0, 0].tolist() == [10, 11, 12, 22, 32, 42, 43, 44]


def test_dynamic_cfg_decay():
    assert dynamic_scale(4.0, 0, 25) == pytest.approx(4.0)
    assert dynamic_scale(4.0, 25, 25) == pytest.approx(2.0)
    assert 2.0 < dynamic_scale(2.9, 10, 25) * 4.0 / 2.9 < 4.0
