"""The Hallo / Hallo2 weights folder: layout check, tiny folder, load, convert round trip,
``genhuman download|convert hallo|hallo2``, and the bad-input errors (one line, exit 2)."""

import json
import os
import shutil
import time

import numpy as np
import pytest
import torch

from genhuman.audio_features.wav2vec import frame_windows, wav2vec_features
from genhuman.checkpoints import download as dl
from genhuman.checkpoints.hallo import NET_FILES, REPOS
from genhuman.checkpoints.hallo_convert import check_hallo_weights, convert_hallo, load_hallo
from genhuman.checkpoints.layout import (FACE_DETECTOR, FACE_RECOGNIZER, HALLO_FAMILIES, HALLO_UNET_CONFIG, VAE_DIR,
                                         WAV2VEC_DIR, hallo_root)
from genhuman.checkpoints.tiny import WAV2VEC_TINY, save_tiny_hallo_folder, tiny_hallo_config
from genhuman.cli import main
from genhuman.errors import InputError, MissingWeightsError

FACE_MESSAGE = ("face_analysis/models/scrfd_10g_bnkps.onnx and glintr100.onnx (insightface's antelopev2 pack: "
                "Hallo's face embedding is glintr100's ArcFace of the SCRFD-detected face, run with onnxruntime; "
                "GenHuman's own MediaPipe landmarks give the masks, so the other face_analysis files are not needed)")


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A code clone holding the tiny weights in ``pretrained_models/``, for both families
    (hallo2/net.pth is a copy: the two files have the same keys)."""
    parent = tmp_path_factory.mktemp("hallo_clone")
    root = save_tiny_hallo_folder(parent / "pretrained_models", "hallo", seed=3)
    (root / "hallo2").mkdir()
    shutil.copyfile(root / "hallo" / "net.pth", root / "hallo2" / "net.pth")
    return parent


def variant_of(clone, tmp_path, remove=()):
    """A hard-linked copy of the tiny folder without ``remove`` (files or folders)."""
    root = tmp_path / "w"
    shutil.copytree(clone / "pretrained_models", root, copy_function=os.link)
    for name in remove:
        target = root / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    return root


def states_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def one_line_error(capsys):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("genhuman: error: ")
    return err.strip()[len("genhuman: error: "):]


# ---------------------------------------------------------------- layout and the tiny folder


def test_layout_agrees_with_the_net_loader_and_downloads_only_what_runs():
    assert {f.name: f.net for f in HALLO_FAMILIES.values()} == NET_FILES
    assert {f.name: f.repo_id for f in HALLO_FAMILIES.values()} == REPOS
    hallo, hallo2 = HALLO_FAMILIES["hallo"].download_patterns, HALLO_FAMILIES["hallo2"].download_patterns
    assert hallo == ["hallo/net.pth", "stable-diffusion-v1-5/unet/config.json", "sd-vae-ft-mse/*",
                     "wav2vec/wav2vec2-base-960h/*", "audio_separator/*", FACE_DETECTOR, FACE_RECOGNIZER]
    assert hallo2 == ["hallo2/net.pth", *hallo[1:], "realesrgan/RealESRGAN_x2plus.pth", "hallo2/net_g.pth"]


def test_tiny_folder_passes_the_check_and_loads_every_part(clone):
    root = clone / "pretrained_models"
    assert hallo_root(clone) == root and hallo_root(root) == root
    assert check_hallo_weights(clone).name == "hallo"
    c = load_hallo(clone)
    assert (c.layout, c.source, c.family.name) == ("official", root, "hallo")
    assert (c.face_detector, c.face_recognizer) == (root / FACE_DETECTOR, root / FACE_RECOGNIZER)
    assert c.vocal_separator is None and c.upscaler is None
    config = c.net.config
    config.denoising_unet.audio_widths = {}
    assert config == tiny_hallo_config()  # heads/groups from the unet config.json, the rest off the shapes
    file_state, loaded = torch.load(root / "hallo" / "net.pth", weights_only=True), c.net.state_dict()
    assert loaded.keys() == file_state.keys() and all(torch.equal(loaded[k], v) for k, v in file_state.items())
    assert not c.net.training and c.wav2vec.config.num_hidden_layers == WAV2VEC_TINY["num_hidden_layers"]
    assert c.vae.config.latent_channels == 4 and c.net.config.denoising_unet.in_channels == 4


def test_heads_and_groups_come_from_the_unet_config(clone, tmp_path):
    root = variant_of(clone, tmp_path, [HALLO_UNET_CONFIG])
    data = tiny_hallo_config().reference_unet.to_diffusers_config()
    (root / HALLO_UNET_CONFIG).write_text(json.dumps({**data, "attention_head_dim": 4, "norm_num_groups": 16}))
    config = load_hallo(root).net.config
    assert (config.reference_unet.attention_heads, config.denoising_unet.attention_heads) == (4, 4)
    assert (config.reference_unet.norm_num_groups, config.denoising_unet.norm_num_groups) == (16, 16)
    (root / HALLO_UNET_CONFIG).write_text("{")
    with pytest.raises(InputError, match=r"^unet/config\.json is not valid JSON$"):
        load_hallo(root)


def test_tiny_wav2vec_feeds_the_tiny_audio_projection(clone):
    """What an engine does with the folder: 1 s of audio -> (25, 3, 32) features -> 5-frame
    windows -> the audio tokens of the net's projection."""
    c = load_hallo(clone)
    wave = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    features, length = wav2vec_features(c.wav2vec, wave)
    assert length == 25 and features.shape == (25, WAV2VEC_TINY["num_hidden_layers"], WAV2VEC_TINY["hidden_size"])
    with torch.no_grad():
        tokens = c.net.audioproj(frame_windows(features)[None])
    assert tokens.shape == (1, 25, 32, 32) and torch.isfinite(tokens).all()


def test_tiny_face_analysis_files_have_insightface_interfaces(clone):
    import onnxruntime

    root = clone / "pretrained_models"
    detector = onnxruntime.InferenceSession(str(root / FACE_DETECTOR), providers=["CPUExecutionProvider"])
    image = np.full((1, 3, 640, 640), -1.0, np.float32)  # (x - 127.5) / 128 of a black image
    image[..., 320:352, 256:288] = 1.0  # one bright 32-pixel cell: row 10, column 8
    outputs = detector.run(None, {"input.1": image})
    assert [o.shape for o in outputs] == [(12800, 1), (3200, 1), (800, 1), (12800, 4), (3200, 4), (800, 4),
                                          (12800, 10), (3200, 10), (800, 10)]
    assert np.flatnonzero(outputs[2] > 0.5).tolist() == [416, 417]  # (10 * 20 + 8) * 2 anchors
    assert outputs[0].max() < 1e-6 and outputs[1].max() < 1e-6
    assert np.all(outputs[5] == 1.0) and outputs[8][0, :2].tolist() == pytest.approx([-0.35, -0.25])
    recognizer = onnxruntime.InferenceSession(str(root / FACE_RECOGNIZER), providers=["CPUExecutionProvider"])
    crops = np.random.default_rng(0).uniform(-1, 1, (2, 3, 112, 112)).astype(np.float32)
    embedding = recognizer.run(None, {"input.1": crops})[0]
    assert embedding.shape == (2, 512) and not np.allclose(embedding[0], embedding[1])


# ---------------------------------------------------------------- bad inputs: one line each


def test_missing_face_analysis_is_one_line_naming_the_files(clone, tmp_path, capsys):
    root = variant_of(clone, tmp_path, ["face_analysis"])
    with pytest.raises(MissingWeightsError) as info:
        load_hallo(root)
    assert str(info.value) == (f"Hallo weights (hallo) incomplete in {str(root)!r}: missing {FACE_MESSAGE}; get them "
                               f"with `genhuman download hallo --dir {root}` (Hugging Face repo "
                               f"fudan-generative-ai/hallo)")
    assert main(["convert", "hallo", str(root), str(tmp_path / "out")]) == 2
    assert one_line_error(capsys) == str(info.value)
    assert not (tmp_path / "out").exists()


def test_one_missing_onnx_file_is_named_alone(clone, tmp_path):
    root = variant_of(clone, tmp_path, [FACE_RECOGNIZER])
    with pytest.raises(MissingWeightsError, match=r"missing face_analysis/models/glintr100\.onnx \(insightface's"):
        check_hallo_weights(root)


def test_missing_wav2vec_vae_and_net_are_listed_together(clone, tmp_path):
    root = variant_of(clone, tmp_path, [WAV2VEC_DIR, f"{VAE_DIR}/diffusion_pytorch_model.safetensors"])
    with pytest.raises(MissingWeightsError, match=(
            r"^Hallo weights \(hallo2\) incomplete in .*: missing hallo2/net\.pth, sd-vae-ft-mse/ "
            r"\(diffusion_pytorch_model\.safetensors or diffusion_pytorch_model\.bin\), wav2vec/wav2vec2-base-960h/ "
            r"\(config\.json and model\.safetensors or pytorch_model\.bin\); get them with `genhuman download "
            r"hallo2 --dir .*` \(Hugging Face repo fudan-generative-ai/hallo2\)$")):
        (root / "hallo2" / "net.pth").unlink()
        load_hallo(root, "hallo2")
    with pytest.raises(MissingWeightsError, match=r"^weights folder '.*nowhere' does not exist; get them with "):
        load_hallo(tmp_path / "nowhere")
    with pytest.raises(MissingWeightsError, match=r"^unknown Hallo family 'hallo3'; choose one of: hallo, hallo2$"):
        load_hallo(root, "hallo3")


def test_net_pth_of_another_family_is_one_line_through_the_cli(clone, tmp_path, capsys):
    from genhuman.models import EchoUNet3D, UNet3DConfig

    root = variant_of(clone, tmp_path, ["hallo/net.pth"])
    torch.save(EchoUNet3D(UNet3DConfig.tiny()).state_dict(), root / "hallo" / "net.pth")  # EchoMimic's denoiser
    assert main(["convert", "hallo", str(root), str(tmp_path / "out")]) == 2
    assert one_line_error(capsys) == (
        "hallo/net.pth is not a Hallo net.pth: its keys do not start with reference_unet, denoising_unet, "
        "face_locator, imageproj, audioproj (keys such as conv_in.bias, conv_in.weight)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]  # no destination, no .partial left
    with pytest.raises(InputError, match=r"^hallo/net\.pth is not a Hallo net\.pth"):
        load_hallo(root)


def test_wav2vec_of_another_width_is_one_line(clone, tmp_path):
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    from genhuman.models.pretrained import save_state_dict

    root = variant_of(clone, tmp_path, [WAV2VEC_DIR])
    config = Wav2Vec2Config(**{**WAV2VEC_TINY, "num_hidden_layers": 2})
    config.save_pretrained(root / WAV2VEC_DIR)
    save_state_dict(Wav2Vec2Model(config).state_dict(), root / WAV2VEC_DIR / "model.safetensors")
    with pytest.raises(InputError, match=(
            r"^hallo/net\.pth's audio projection takes 480 values per frame, but wav2vec/wav2vec2-base-960h/ "
            r"gives 320 \(5 frames x 2 layers x 32\); they do not belong together$")):
        load_hallo(root)


def test_converted_folder_of_another_family_is_refused(tmp_path):
    (tmp_path / "genhuman.json").write_text(json.dumps({"format": "genhuman-echomimic", "family": "echomimic"}))
    with pytest.raises(MissingWeightsError, match=r"holds converted echomimic weights, not Hallo's$"):
        load_hallo(tmp_path)


# ---------------------------------------------------------------- genhuman convert hallo|hallo2


def test_convert_round_trip_gives_identical_tensors(clone, tmp_path, capsys):
    source = variant_of(clone, tmp_path)
    (source / "audio_separator").mkdir()
    (source / "audio_separator" / "Kim_Vocal_2.onnx").write_bytes(b"onnx bytes")
    (source / "audio_separator" / "mdx_model_data.json").write_text("{}")
    out = tmp_path / "converted"
    assert main(["convert", "hallo2", str(source), str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"converted hallo2 to {out}"
    assert json.loads((out / "genhuman.json").read_text()) == {
        "format": "genhuman-hallo", "format_version": 1, "family": "hallo2", "dtype": "as-is"}
    official, converted = load_hallo(source, "hallo2"), load_hallo(out)
    assert (converted.layout, converted.family.name, converted.source) == ("converted", "hallo2", out)
    assert converted.net.config == official.net.config
    for a, b in ((official.net, converted.net), (official.vae, converted.vae), (official.wav2vec, converted.wav2vec)):
        assert states_equal(a, b)
    for name in (FACE_DETECTOR, FACE_RECOGNIZER, "audio_separator/mdx_model_data.json"):
        assert (out / name).read_bytes() == (source / name).read_bytes()
    assert converted.vocal_separator == out / "audio_separator" / "Kim_Vocal_2.onnx"
    assert not any(p.suffix == ".pth" for p in out.rglob("*"))
    with pytest.raises(MissingWeightsError, match=r"holds the converted hallo2 weights, not hallo; convert those "
                                                  r"with `genhuman convert hallo SRC DST`$"):
        load_hallo(out, "hallo")


def test_convert_fp16_casts_only_the_net(clone, tmp_path):
    out = convert_hallo(clone, tmp_path / "fp16", "hallo", torch.float16)
    c = load_hallo(out, dtype=torch.float16)
    assert c.net.denoising_unet.conv_out.weight.dtype == torch.float16
    assert next(c.wav2vec.parameters()).dtype == torch.float32
    assert json.loads((out / "genhuman.json").read_text())["dtype"] == "float16"


def test_convert_refusals_are_one_line(clone, tmp_path, capsys):
    assert main(["convert", "hallo", str(clone), str(tmp_path / "x"), "--variant", "audio"]) == 2
    assert one_line_error(capsys) == "hallo has no variants (--variant audio)"
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file").write_text("x")
    with pytest.raises(InputError, match=r"^destination '.*full' exists and is not empty$"):
        convert_hallo(clone, tmp_path / "full")
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "genhuman.json").write_text(json.dumps({"format": "genhuman-hallo", "family": "hallo"}))
    with pytest.raises(InputError, match=r"is already a converted folder$"):
        convert_hallo(tmp_path / "done", tmp_path / "y")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "genhuman.json").write_text(json.dumps({"format": "genhuman-hallo", "family": "hallo"}))
    with pytest.raises(MissingWeightsError, match=r"^converted Hallo folder .* is incomplete: missing net/ "
                                                  r"\(config\.json and model\.safetensors\), vae/ "):
        load_hallo(tmp_path / "broken")


# ---------------------------------------------------------------- genhuman download hallo|hallo2


@pytest.mark.parametrize("family", ["hallo", "hallo2"])
def test_download_fails_fast_offline(family, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_ENDPOINT", "https://127.0.0.1:9")  # nothing listens there: refused at once
    start = time.monotonic()
    assert main(["download", family, "--dir", str(tmp_path / "w")]) == 1
    assert time.monotonic() - start < 10
    assert one_line_error(capsys).startswith("cannot reach 127.0.0.1")
    assert not (tmp_path / "w").exists()


def test_download_variant_is_refused(tmp_path, capsys):
    assert main(["download", "hallo2", "--dir", str(tmp_path / "w"), "--variant", "v2"]) == 2
    assert one_line_error(capsys) == "hallo2 has no variants (--variant v2)"


def test_download_fetches_the_patterns_and_checks_what_came(clone, tmp_path, monkeypatch, capsys):
    """A stand-in hub: the request, then a complete and an incomplete snapshot."""
    import huggingface_hub

    calls = []

    def snapshot(repo, local_dir, allow_patterns):
        calls.append((repo, allow_patterns))
        shutil.copytree(clone / "pretrained_models", local_dir, copy_function=os.link, dirs_exist_ok=True)
        (local_dir / ".cache").mkdir(exist_ok=True)
        if repo.endswith("hallo2"):
            shutil.rmtree(local_dir / "face_analysis")

    monkeypatch.setattr(dl, "check_connectivity", lambda url: None)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot)
    target = tmp_path / "w"
    assert main(["download", "hallo", "--dir", str(target)]) == 0
    assert capsys.readouterr().out.strip() == f"downloaded hallo to {target}; use it with --weights {target}"
    assert calls == [("fudan-generative-ai/hallo", HALLO_FAMILIES["hallo"].download_patterns)]
    assert not (target / ".cache").exists() and check_hallo_weights(target).name == "hallo"
    assert main(["download", "hallo2", "--dir", str(tmp_path / "w2")]) == 1
    assert one_line_error(capsys) == f"fudan-generative-ai/hallo2 did not provide {FACE_MESSAGE}"
