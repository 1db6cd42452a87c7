"""The echomimic_v3 and echomimic_v3_flash engines end to end on tiny official-layout folders (the harness's tiny
weights): the CLI writes a playable MP4 with audio, long audio goes window by window, bad inputs are one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from genhuman.cli import main
from genhuman.engines import Avatar, engine_names, load_engine
from genhuman.engines.echomimic_v3 import face_token_mask, loudness_normalised, video_frames
from genhuman.errors import InputError
from genhuman.media import load_audio, read_video_info, save_image, save_wav
from genhuman.request import AnimateRequest, EngineOptions

from .official import official_clip_weights, official_umt5_weights, official_vae_weights, write_official_folder

SIZE = 32  # 4x4 latents, 2x2 transformer tokens
WAV2VEC = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=16,
               conv_dim=(8, 8, 8), conv_kernel=(10, 8, 4), conv_stride=(5, 8, 8), num_conv_pos_embeddings=8,
               num_conv_pos_embedding_groups=16, feat_extract_norm="group", vocab_size=32)


def _tokenizer(directory: Path) -> None:
    """A character-level stand-in for the umT5 tokenizer (transformers fast tokenizer): </s> 1, pad 0, unique ids
    under the tiny umT5's 96-token vocabulary."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,!?'-"
    vocab.update({c: 3 + i for i, c in enumerate(chars)})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="<pad>",
                            unk_token="<unk>").save_pretrained(str(directory))


def _wav2vec(directory: Path) -> None:
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    from genhuman.models.pretrained import WEIGHTS_NAME, save_state_dict

    torch.manual_seed(0)
    config = Wav2Vec2Config(**WAV2VEC)
    directory.mkdir(parents=True)
    config.save_pretrained(directory)
    save_state_dict(Wav2Vec2Model(config).state_dict(), directory / WEIGHTS_NAME)


def write_tiny_folder(root: Path, kind: str, wav2vec: Path, **kw) -> Path:
    """The README layout with the harness's tiny transformer, VAE, umT5 and CLIP files."""
    write_official_folder(root, kind, **kw)
    base = root / "Wan2.1-Fun-V1.1-1.3B-InP"
    config = json.loads((base / "config.json").read_text())
    (base / "config.json").write_text(json.dumps(dict(config, clip_num_heads=2)))  # the tiny CLIP's heads
    torch.save(official_vae_weights(), base / "Wan2.1_VAE.pth")
    torch.save(official_umt5_weights(), base / "models_t5_umt5-xxl-enc-bf16.pth")
    torch.save(official_clip_weights(), base / "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth")
    _tokenizer(base / "google" / "umt5-xxl")
    (root / ("chinese-wav2vec2-base" if kind == "flash" else "wav2vec2-base-960h")).symlink_to(wav2vec)
    return root


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("v3")
    _wav2vec(tmp / "wav2vec")
    return {kind: write_tiny_folder(tmp / kind, kind, tmp / "wav2vec") for kind in ("preview", "flash")}


@pytest.fixture(scope="module")
def speech(tmp_path_factory, speech_path):
    path = tmp_path_factory.mktemp("audio") / "speech.wav"
    save_wav(path, load_audio(speech_path)[:16000])  # 1 s: 25 frames
    return path


def animate(weights, image, audio, out, *args):
    return main(["animate", str(image), str(audio), "-o", str(out), "--weights", str(weights),
                 "--width", str(SIZE), "--height", str(SIZE), "--steps", "2", *args])


def test_registered_as_weights_engines():
    from genhuman.engines import get_engine_class
    from genhuman.engines.diffusion import DiffusionEngine

    assert {"echomimic_v3", "echomimic_v3_flash"} <= set(engine_names())
    # the server builds engines that are not DiffusionEngines without weights, to validate requests
    assert all(issubclass(get_engine_class(n), DiffusionEngine) for n in ("echomimic_v3", "echomimic_v3_flash"))


@pytest.mark.parametrize("engine", ["echomimic_v3", "echomimic_v3_flash"])
def test_cli_writes_a_playable_mp4_with_audio(folders, engine, portrait_path, speech, tmp_path, capsys):
    out = tmp_path / f"{engine}.mp4"
    weights = folders["flash" if engine.endswith("flash") else "preview"]
    assert animate(weights, portrait_path, speech, out, "--engine", engine) == 0, capsys.readouterr().err
    info = read_video_info(out)
    assert (info.width, info.height, info.fps, info.frames) == (SIZE, SIZE, 25.0, 25)
    assert info.has_audio and info.audio_duration == pytest.approx(1.0, abs=0.05)


def test_long_audio_goes_window_by_window(folders, portrait_path, speech_path):
    """3 s in windows of 9 frames with 4 held back: every frame once, the first ones before the audio ends."""
    engine = load_engine("echomimic_v3_flash", EngineOptions(weights=folders["flash"]))
    request = AnimateRequest(width=SIZE, height=SIZE, steps=1, extra={"window_frames": 9, "overlap": 4})
    avatar = engine.prepare_avatar(portrait_path, request=request)
    wave = load_audio(speech_path)[:48000]
    read: list[int] = []

    def chunks():
        for start in range(0, len(wave), 1600):
            read.append(start)
            yield wave[start:start + 1600]

    stream = engine.stream(avatar, chunks(), request)
    first = next(stream)
    assert first.index == 0 and first.image.shape == (SIZE, SIZE, 3)
    assert len(read) < 10  # 9 frames need 0.36 s: the first window started after 6 of 30 chunks
    rest = list(stream)
    assert [f.index for f in [first, *rest]] == list(range(75))


def test_helpers():
    assert [video_frames(n) for n in (1, 2, 5, 6, 25, 81)] == [1, 5, 5, 9, 25, 81]
    mask = face_token_mask((10.0, 2.0, 20.0, 14.0), 48, 32)  # 3x2 tokens: the box covers columns 0-1, row 0
    assert mask.tolist() == [[1, 1, 0, 0, 0, 0]]


def test_flash_audio_is_brought_to_minus_23_lufs(speech_path):
    import pyloudnorm

    wave = load_audio(speech_path)[:32000] * 0.1
    meter = pyloudnorm.Meter(16000)
    before = meter.integrated_loudness(wave.astype(np.float64))
    after = meter.integrated_loudness(loudness_normalised(wave).astype(np.float64))
    assert before < -30 and after == pytest.approx(-23.0, abs=0.01)
    short = wave[:3200]  # under one 400 ms gating block: left as it is
    assert loudness_normalised(short) is short


def _one_line_exit_2(capsys, *argv) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_bad_inputs_are_one_line(folders, portrait_path, speech, tmp_path, tmp_path_factory, capsys):
    out = tmp_path / "x.mp4"
    incomplete = tmp_path / "incomplete"
    shutil.copytree(folders["preview"], incomplete, symlinks=True)
    (incomplete / "transformer" / "diffusion_pytorch_model.safetensors").unlink()
    err = _one_line_exit_2(capsys, "animate", str(portrait_path), str(speech), "-o", str(out), "--engine",
                           "echomimic_v3", "--weights", str(incomplete))
    assert "incomplete EchoMimicV3 weights folder incomplete: missing transformer/" in err
    base_only = write_tiny_folder(tmp_path / "base_only", "preview", (folders["preview"] / "wav2vec2-base-960h")
                                  .resolve(), base_only=True)
    err = _one_line_exit_2(capsys, "animate", str(portrait_path), str(speech), "-o", str(out), "--engine",
                           "echomimic_v3", "--weights", str(base_only), "--width", "32", "--height", "32")
    assert "transformer/diffusion_pytorch_model.safetensors lacks 9 EchoMimicV3 audio key(s)"  # 93 at full size in err
    blank = tmp_path / "blank.png"
    save_image(blank, np.full((64, 64, 3), 128, np.uint8))
    err = _one_line_exit_2(capsys, "animate", str(blank), str(speech), "-o", str(out), "--engine", "echomimic_v3",
                           "--weights", str(folders["preview"]), "--width", "32", "--height", "32")
    assert "no face found in the portrait" in err
    assert not out.exists()


def test_flash_needs_no_face(folders, speech, tmp_path):
    blank = tmp_path / "blank.png"
    save_image(blank, np.full((64, 64, 3), 128, np.uint8))
    flash = load_engine("echomimic_v3_flash", EngineOptions(weights=folders["flash"]))
    avatar = flash.prepare_avatar(blank, request=AnimateRequest(width=SIZE, height=SIZE))
    assert "face_mask" not in avatar.arrays
    assert avatar.arrays["clip_embeds"].shape == (1, 257, 64)
    assert avatar.arrays["prompt_embeds"].shape == (1, 512, 64)
    # umT5 output for the real tokens, zeros after: "A person is speaking." is 21 characters + </s>
    assert np.abs(avatar.arrays["prompt_embeds"][0, :22]).min(axis=1).max() > 0
    assert not avatar.arrays["prompt_embeds"][0, 22:].any()
    saved = Avatar.load(avatar.save(tmp_path / "avatar"))  # the embeddings travel; umT5/CLIP are not needed again
    frames = list(flash.stream(saved, [load_audio(speech)[:8000]], AnimateRequest(width=SIZE, height=SIZE, steps=1)))
    assert len(frames) == 12 and frames[-1].image.shape == (SIZE, SIZE, 3)  # 0.5 s at 25 fps


def test_prompts_and_text_cfg_come_from_the_request_model(folders, portrait_path, monkeypatch, capsys):
    with pytest.raises(SystemExit):
        main(["animate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--prompt TEXT" in text and "--negative-prompt TEXT" in text and "--text-cfg X" in text
    assert "--offload" in text and "--vae-tiling" in text
    with pytest.raises(InputError, match="prompt is too long \\(2001 characters\\); the limit is 2000"):
        AnimateRequest(prompt="a" * 2001)
    with pytest.raises(InputError, match="text cfg must be between 1.0 and 20.0"):
        AnimateRequest(text_cfg=0.5)

    engine = load_engine("echomimic_v3", EngineOptions(weights=folders["preview"]))
    size = dict(width=SIZE, height=SIZE)
    default = engine.prepare_avatar(portrait_path, request=AnimateRequest(**size))
    other = engine.prepare_avatar(portrait_path, request=AnimateRequest(prompt="A cat is singing.", **size))
    negative = engine.prepare_avatar(portrait_path, request=AnimateRequest(negative_prompt="Blurry.", **size))
    assert not np.array_equal(default.arrays["prompt_embeds"], other.arrays["prompt_embeds"])
    assert np.array_equal(default.arrays["negative_embeds"], other.arrays["negative_embeds"])
    assert np.array_equal(default.arrays["prompt_embeds"], negative.arrays["prompt_embeds"])
    assert not np.array_equal(default.arrays["negative_embeds"], negative.arrays["negative_embeds"])

    seen = []
    pipeline = engine.load().pipeline
    monkeypatch.setattr(pipeline, "sample_preview", lambda cond, audio, noise, mask, options: (
        seen.append(options.text_scale), noise)[1])
    wave = np.zeros(4000, np.float32)
    wave[::7] = 0.2
    for text_cfg, expected in ((None, 4.0), (6.5, 6.5)):
        list(engine.stream(default, [wave], AnimateRequest(steps=1, text_cfg=text_cfg, **size)))
        assert seen[-1] == expected


def test_the_server_keeps_one_avatar_per_prompt():
    from genhuman.server.avatars import avatar_key

    def key(**kw):
        return avatar_key("echomimic_v3", "d" * 64, AnimateRequest(**kw))

    assert key() == key(text_cfg=7.0)  # guidance is per video, the prompt embeddings are per avatar
    assert len({key(), key(prompt="A cat."), key(negative_prompt="Blurry.")}) == 3


def test_vae_tiling_and_offload_options(folders, speech, caplog):
    with caplog.at_level("WARNING"):
        engine = load_engine("echomimic_v3_flash", EngineOptions(weights=folders["flash"], vae_tiling=True,
                                                                 offload=True))
    assert "--offload moves models between the GPU and CPU memory; on cpu it does nothing" in caplog.text
    assert not engine.offload.enabled
    assert engine.load().vae.use_tiling
    request = AnimateRequest(width=SIZE, height=SIZE, steps=1)
    avatar = engine.prepare_avatar(np.full((64, 64, 3), 128, np.uint8), request=request)
    frames = list(engine.stream(avatar, [load_audio(speech)[:4000]], request))
    assert len(frames) == 6 and frames[0].image.shape == (SIZE, SIZE, 3)
