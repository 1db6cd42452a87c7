"""Official layout -> load, convert -> load round trip, variants, shared storage, errors."""

import json
import shutil

import pytest
import torch
from safetensors import safe_open

from genhuman.checkpoints import convert_echomimic, is_converted, load_echomimic
from genhuman.checkpoints.tiny import save_tiny_official_checkpoint
from genhuman.errors import InputError, MissingWeightsError


def outputs(components, seed=0):
    """Outputs of the networks on fixed inputs, and the whisper weights (its forward is slow)."""
    g = torch.Generator().manual_seed(seed)
    latent = torch.randn(1, 4, 8, 8, generator=g)
    sample = torch.randn(2, 4, 3, 8, 8, generator=g)
    audio = torch.randn(2, 3, 50, components.denoising_unet.config.cross_attention_dim, generator=g)
    mask = torch.rand(1, components.variant.condition_channels, 1, 64, 64, generator=g)
    with torch.no_grad():
        kv = components.denoising_unet.prepare_reference(components.reference_unet(latent))
        cond = components.condition_encoder(mask)
        v = components.denoising_unet(sample, 999, audio, cond, kv, torch.tensor([False, True]))
        image = components.vae.decode(latent.to(components.vae.dtype)).sample
    whisper = torch.cat([t.flatten() for t in components.audio_encoder.state_dict().values()])
    return v, whisper, image


def test_official_layout_loads_with_tiny_geometry(official):
    c = load_echomimic(official)
    assert c.layout == "official" and c.variant.name == "audio"
    assert c.denoising_unet.config.block_out_channels == (32, 64)
    assert c.denoising_unet.config.cross_attention_dim == 64  # the tiny whisper's width
    assert c.condition_encoder.config.conditioning_channels == 1
    assert type(c.vae).__name__ == "AutoencoderKL" and type(c.audio_encoder).__name__ == "WhisperEncoder"
    # the .pth files hold exactly the 2D / motion split of the official checkpoints
    den = torch.load(official / "denoising_unet.pth", weights_only=True)
    motion = torch.load(official / "motion_module.pth", weights_only=True)
    assert set(den) | set(motion) == set(c.denoising_unet.state_dict()) and not set(den) & set(motion)
    # a clone's parent folder is accepted too (pretrained_weights/ inside it)
    assert load_echomimic(official.parent).source == official


def test_convert_round_trip_is_exact(official, tmp_path):
    before = outputs(load_echomimic(official))
    dst = convert_echomimic(official, tmp_path / "converted")
    assert is_converted(dst)
    assert json.loads((dst / "genhuman.json").read_text())["variant"] == "audio"
    assert not (tmp_path / ".converted.partial").exists()
    after = outputs(load_echomimic(dst))
    for a, b in zip(before, after):
        assert torch.equal(a, b)


def test_fp16_conversion_stores_half_weights(official, tmp_path):
    dst = convert_echomimic(official, tmp_path / "half", dtype=torch.float16)
    with safe_open(str(dst / "denoising_unet" / "model.safetensors"), "pt") as f:
        assert f.get_tensor("conv_in.weight").dtype == torch.float16
        assert len(list(f.keys())) == len(load_echomimic(official).denoising_unet.state_dict())
    c = load_echomimic(dst, dtype=torch.bfloat16)
    v, _, _ = outputs(c)
    assert v.dtype == torch.bfloat16 and torch.isfinite(v.float()).all()


def test_v2_shared_storage_pose_encoder_converts(tmp_path):
    src = save_tiny_official_checkpoint(tmp_path / "v2", variant="v2")
    state = torch.load(src / "pose_encoder.pth", weights_only=True)
    assert state["conv_in.weight"].untyped_storage().data_ptr() == state["conv_out.bias"].untyped_storage().data_ptr()
    assert (src / "audio_processor" / "tiny.pt").is_file()
    dst = convert_echomimic(src, tmp_path / "v2conv", variant="v2")
    c = load_echomimic(dst)
    assert c.variant.name == "v2" and c.condition_encoder.config.conditioning_channels == 3
    assert torch.equal(c.condition_encoder.state_dict()["blocks.3.weight"], state["blocks.3.weight"])


def test_missing_file_is_named(official, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(official, partial)
    (partial / "motion_module.pth").unlink()
    with pytest.raises(MissingWeightsError, match=r"missing motion_module\.pth;.*genhuman download echomimic"
                                                  r".*BadToBest/EchoMimic"):
        load_echomimic(partial)
    with pytest.raises(MissingWeightsError, match=r"missing denoising_unet_pose\.pth, reference_unet_pose\.pth, "
                                                  r"motion_module_pose\.pth, face_locator_pose\.pth"):
        load_echomimic(official, variant="pose")
    with pytest.raises(MissingWeightsError, match="does not exist"):
        load_echomimic(tmp_path / "nowhere")
    with pytest.raises(InputError, match="not empty"):
        convert_echomimic(official, official)
    assert not (tmp_path / "out").exists()


def test_converted_variant_mismatch_and_bad_keys(official, tmp_path):
    dst = convert_echomimic(official, tmp_path / "c")
    with pytest.raises(MissingWeightsError, match="holds the converted 'audio' weights, not 'acc'"):
        load_echomimic(dst, variant="acc")
    broken = tmp_path / "broken"
    shutil.copytree(official, broken)
    state = torch.load(broken / "face_locator.pth", weights_only=True)
    del state["blocks.2.bias"]
    torch.save(state, broken / "face_locator.pth")
    message = r"face_locator\.pth does not match the model: 1 missing \(e\.g\. blocks\.2\.bias\)"
    with pytest.raises(ValueError, match=message):
        load_echomimic(broken)
    assert not (tmp_path / "never").exists()
    with pytest.raises(ValueError):
        convert_echomimic(broken, tmp_path / "never")
    assert not (tmp_path / "never").exists() and not (tmp_path / ".never.partial").exists()


def test_corrupt_pth_is_an_input_error(official, tmp_path):
    broken = tmp_path / "corrupt"
    shutil.copytree(official, broken)
    (broken / "reference_unet.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"^cannot read weights reference_unet\.pth: damaged, truncated or not a "
                                         r"weights file$"):
        load_echomimic(broken)
