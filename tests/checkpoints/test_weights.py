"""Every weights format: good files load; malicious, damaged and truncated ones are one
InputError line that names the file (not its folder) and never repeats torch's advice."""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import tarfile

import pytest
import torch

from genhuman.checkpoints.tiny import tiny_vae
from genhuman.checkpoints.vae import load_vae
from genhuman.checkpoints.weights import parse_config, read_json, read_state_dict, read_torch_pickle
from genhuman.cli import main
from genhuman.errors import InputError

STATE = {"a": torch.arange(6.0).reshape(2, 3), "b": torch.tensor([1, 2, 3], dtype=torch.int64)}
CODE_RUN = "could run code (refused)"
DAMAGED = "damaged, truncated or not a weights file"


class _Canary:
    """Unpickled with weights_only=False it would create the file ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def _save(kind: str, path, state=STATE):
    if kind == "zip":
        torch.save(state, path)
    elif kind == "legacy":
        torch.save(state, path, _use_new_zipfile_serialization=False)
    else:
        from safetensors.torch import save_file

        save_file(state, str(path))
    return path


@pytest.mark.parametrize("kind, name", [("zip", "w.pth"), ("legacy", "w.bin"), ("safetensors", "w.safetensors")])
def test_good_files_load_exactly(tmp_path, kind, name):
    got = read_state_dict(_save(kind, tmp_path / name))
    assert set(got) == {"a", "b"} and torch.equal(got["a"], STATE["a"]) and torch.equal(got["b"], STATE["b"])


@pytest.mark.parametrize("kind, name", [("zip", "w.pth"), ("legacy", "w.pt")])
def test_malicious_pickles_are_refused_and_run_nothing(tmp_path, kind, name):
    canary = tmp_path / "canary"
    path = _save(kind, tmp_path / name, {"a": torch.zeros(2), "evil": _Canary(canary)})
    with pytest.raises(InputError) as info:
        read_state_dict(path)
    assert str(info.value) == f"cannot read weights {name}: it holds objects other than tensors, which {CODE_RUN}"
    assert not canary.exists()


def _legacy_tar(path, canary):
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as archive:
        for member in ("sys_info", "pickle", "storages", "tensors"):
            data = pickle.dumps(_Canary(canary), protocol=2)
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("kind, name", [("zip", "w.pth"), ("legacy", "w.bin"), ("safetensors", "w.safetensors")])
@pytest.mark.parametrize("damage", ["truncate", "head", "empty", "garbage"])
def test_damaged_files_are_one_line(tmp_path, kind, name, damage):
    path = _save(kind, tmp_path / name)
    data = path.read_bytes()
    damaged = {"truncate": data[: len(data) // 2], "head": b"\xff" * 16 + data[16:], "empty": b"",
               "garbage": b"not a checkpoint at all"}[damage]
    path.write_bytes(damaged)
    with pytest.raises(InputError) as info:
        read_state_dict(path)
    message = str(info.value)
    assert message.startswith(f"cannot read weights {name}: ") and "\n" not in message
    assert "weights_only" not in message and str(tmp_path) not in message


def test_legacy_tar_format_and_non_state_dicts(tmp_path):
    canary = tmp_path / "canary"
    with pytest.raises(InputError, match=f"^cannot read weights old.tar: {DAMAGED}$"):
        read_state_dict(_legacy_tar(tmp_path / "old.tar", canary))
    assert not canary.exists()
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(InputError, match="^cannot read weights list.pth: it is not a state dict of tensors$"):
        read_state_dict(tmp_path / "list.pth")
    torch.save({"n": 3}, tmp_path / "n.pth")
    assert read_torch_pickle(tmp_path / "n.pth") == {"n": 3}  # the whisper file's dims are plain ints
    with pytest.raises(InputError, match="^cannot read weights missing.pth: no such file or directory$"):
        read_state_dict(tmp_path / "missing.pth")


def test_configs(tmp_path):
    config = tmp_path / "vae" / "config.json"
    config.parent.mkdir()
    config.write_text("{not json")
    with pytest.raises(InputError, match="^vae/config.json is not valid JSON$"):
        read_json(config)
    config.write_text("[1, 2]")
    with pytest.raises(InputError, match="^vae/config.json is not a JSON object$"):
        read_json(config)
    config.write_text('{"a": 1}')
    with pytest.raises(InputError, match="^vae/config.json is not a config these weights can be built from$"):
        parse_config(config, lambda data: data["missing"])
    assert parse_config(config, lambda data: data["a"] + 1) == 2


def _vae_folder(path, safe_serialization=True, old_attention_names=False):
    torch.manual_seed(0)
    vae = tiny_vae()
    vae.save_pretrained(path, safe_serialization=safe_serialization)
    if old_attention_names:  # how the official sd-vae-ft-mse names its attention weights
        state = read_state_dict(next(path.glob("diffusion_pytorch_model.*")))
        renames = {".to_q.": ".query.", ".to_k.": ".key.", ".to_v.": ".value.", ".to_out.0.": ".proj_attn."}
        for old, new in renames.items():
            state = {k.replace(old, new): v for k, v in state.items()}
        from safetensors.torch import save_file

        save_file(state, str(path / "diffusion_pytorch_model.safetensors"))
    return vae


@pytest.mark.parametrize("safe, old_names", [(True, False), (False, False), (True, True)])
def test_vae_loads_like_diffusers(tmp_path, safe, old_names):
    reference = _vae_folder(tmp_path / "vae", safe, old_names)
    got = load_vae(tmp_path / "vae", torch.float16)
    want = {k: v.half() for k, v in reference.state_dict().items()}
    assert set(got.state_dict()) == set(want) and all(torch.equal(got.state_dict()[k], v) for k, v in want.items())
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        decoded = load_vae(tmp_path / "vae").decode(reference.encode(x).latent_dist.mean).sample
        expected = reference.decode(reference.encode(x).latent_dist.mean).sample
    torch.testing.assert_close(decoded, expected, rtol=0, atol=0)


def _malicious(official, tmp_path, which):
    folder = tmp_path / f"bad_{which}"
    shutil.copytree(official, folder)
    canary = tmp_path / f"canary_{which}"
    if which == "whisper":
        target = next((folder / "audio_processor").glob("*.pt"))
        torch.save({"dims": _Canary(canary), "model_state_dict": {}}, target)
    else:
        vae = folder / "sd-vae-ft-mse"
        for p in vae.glob("diffusion_pytorch_model.*"):
            p.unlink()
        target = vae / "diffusion_pytorch_model.bin"
        torch.save({"x": _Canary(canary)}, target)
        return folder, "sd-vae-ft-mse/diffusion_pytorch_model.bin", canary
    return folder, target.name, canary


@pytest.mark.parametrize("which", ["whisper", "vae"])
def test_cli_refuses_a_malicious_whisper_pt_or_vae_bin_in_one_line(official, tmp_path, capsys, which,
                                                                   portrait_path, speech_path):
    """Issue 9, item 7: was exit 1 and 4-7 lines repeating torch's advice to use weights_only=False."""
    folder, name, canary = _malicious(official, tmp_path, which)
    expected = f"genhuman: error: cannot read weights {name}: it holds objects other than tensors, which {CODE_RUN}\n"
    assert main(["convert", "echomimic", str(folder), str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == expected
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.partial").exists()
    assert main(["animate", str(portrait_path), str(speech_path), "--engine", "echomimic", "--weights", str(folder),
                 "-o", str(tmp_path / "o.mp4"), "--steps", "1", "--width", "64", "--no-progress"]) == 2
    assert capsys.readouterr().err == expected
    assert not (tmp_path / "o.mp4").exists() and not canary.exists()


def test_converted_folder_with_damaged_parts(official, tmp_path):
    from genhuman.checkpoints import convert_echomimic, load_echomimic

    out = convert_echomimic(official, tmp_path / "conv")
    (out / "whisper" / "config.json").write_text("{")
    with pytest.raises(InputError, match="^whisper/config.json is not valid JSON$"):
        load_echomimic(out)
    shutil.rmtree(out)
    out = convert_echomimic(official, tmp_path / "conv")
    weights = out / "denoising_unet" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(InputError, match=f"^cannot read weights denoising_unet/model.safetensors: {DAMAGED}$"):
        load_echomimic(out)


@pytest.mark.parametrize("key, value", [("layers_per_block", 3000), ("encoder_layers", 10**6),
                                        ("block_out_channels", [32] * 100)])
def test_configs_asking_for_absurd_sizes_are_refused_before_building(tmp_path, key, value):
    """Building 3,000 layers per block on the meta device took 84 s and 1.4 GB before the check."""
    config = tmp_path / "reference_unet" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"in_channels": 4, key: value, "suppress_tokens": list(range(90))}))
    built = []
    with pytest.raises(InputError, match=rf"^reference_unet/config.json asks for an implausible model size \({key}\)$"):
        parse_config(config, built.append)
    assert built == []
    config.write_text(json.dumps({"layers_per_block": 2, "suppress_tokens": list(range(90))}))
    assert parse_config(config, lambda data: data["layers_per_block"]) == 2  # other long lists are fine


def test_whisper_dims_asking_for_a_huge_encoder_are_refused():
    from genhuman.audio_features.whisper import convert_openai_whisper

    dims = dict(n_mels=4, n_audio_ctx=8, n_audio_state=8, n_audio_head=2, n_audio_layer=1000)
    with pytest.raises(InputError, match=r"^the whisper checkpoint is not an OpenAI whisper checkpoint \(unexpected "
                                         r"dims or weights\)$"):
        convert_openai_whisper({"dims": dims, "model_state_dict": {}})
    dims["n_audio_layer"] = "1"
    with pytest.raises(InputError, match="unexpected dims or weights"):
        convert_openai_whisper({"dims": dims, "model_state_dict": {}})
