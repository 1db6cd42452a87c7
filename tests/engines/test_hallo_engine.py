"""The hallo and hallo2 engines end to end on the tiny official-layout folder: the CLI writes a
playable MP4 with audio, clips are written as they are generated, the model's constraints and
the bad inputs are one line and exit 2, non-square portraits are cut and pasted back."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest
import torch

from genhuman.checkpoints import save_tiny_hallo_folder
from genhuman.cli import main
from genhuman.engines import Avatar, engine_names, get_engine_class, load_engine
from genhuman.engines.hallo import Hallo2Engine, HalloEngine
from genhuman.errors import InputError
from genhuman.media import AudioClip, VideoWriter, load_audio, load_image, read_video_info, save_image, save_wav
from genhuman.pipelines.hallo import HalloPipeline
from genhuman.request import AnimateRequest, EngineOptions

SIZE = 64  # the tiny net's 4 levels: 64 px frames, 8x8 latents down to 1x1
FRAMES = 38  # 1.5 s at 25 fps, ceil as the official: clips of 16, 16 and 6


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """The tiny folder for both families (hallo2/net.pth is the same network)."""
    root = save_tiny_hallo_folder(tmp_path_factory.mktemp("hallo") / "pretrained_models", "hallo")
    (root / "hallo2").mkdir()
    shutil.copyfile(root / "hallo" / "net.pth", root / "hallo2" / "net.pth")
    return root


@pytest.fixture(scope="module")
def speech(tmp_path_factory, speech_path):
    path = tmp_path_factory.mktemp("audio") / "speech.wav"
    save_wav(path, load_audio(speech_path)[:24000])
    return path


@pytest.fixture(scope="module")
def engine(weights):
    return load_engine("hallo", EngineOptions(weights=weights))


@pytest.fixture
def clip_calls(monkeypatch):
    """The keyword arguments of every HalloPipeline.clips call."""
    calls: list[dict] = []
    clips = HalloPipeline.clips

    def spy(self, portrait, audio, **options):
        calls.append(options)
        return clips(self, portrait, audio, **options)

    monkeypatch.setattr(HalloPipeline, "clips", spy)
    return calls


def animate(weights, image, audio, out, *extra):
    return main(["animate", str(image), str(audio), "-o", str(out), "--weights", str(weights), "--steps", "2",
                 "--width", str(SIZE), "--no-progress", *extra])


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("genhuman: error: "), err
    return err.strip()[len("genhuman: error: "):]


# ---------------------------------------------------------------- registry and validation


def test_registered_and_imported_lazily():
    assert {"hallo", "hallo2"} <= set(engine_names())
    assert get_engine_class("hallo") is HalloEngine and get_engine_class("hallo2") is Hallo2Engine
    assert Hallo2Engine.patch_drop == 0.25 and HalloEngine.patch_drop is None


def test_validate_fills_the_official_defaults_and_refuses_what_the_model_cannot(engine):
    request = engine.validate(AnimateRequest())
    assert (request.fps, request.seed, request.steps, request.cfg, request.width, request.height) == (
        25, 42, 40, 3.5, 512, 512)
    assert (request.pose_weight, request.face_weight, request.lip_weight, request.context_seconds) == (1, 1, 1, None)
    assert engine.validate(AnimateRequest(height=128)).width == 128
    refusals = {
        "Hallo generates 25 fps video: the frame rate is fixed by the model (its audio features are 25 per "
        "second); got --fps 30": AnimateRequest(fps=30),
        "Hallo generates square frames (its audio attention needs a square grid); got --width 64 and "
        "--height 128": AnimateRequest(width=64, height=128),
        "Hallo generates square frames whose side is a multiple of 64, got 100": AnimateRequest(width=100),
        "unknown hallo options: guidance": AnimateRequest(extra={"guidance": 1}),
    }
    for message, request in refusals.items():
        with pytest.raises(InputError) as info:
            engine.validate(request)
        assert str(info.value) == message
    with pytest.raises(InputError, match=r"^lip weight must be between 0\.0 and 4\.0, got 5\.0$"):
        AnimateRequest(lip_weight=5.0)


# ---------------------------------------------------------------- end to end through the CLI


def test_cli_hallo_writes_a_playable_mp4_with_audio(weights, portrait_path, speech, tmp_path, capsys, clip_calls,
                                                    caplog):
    out = tmp_path / "hallo.mp4"
    with caplog.at_level("INFO", logger="genhuman.engines.hallo"):
        assert animate(weights, portrait_path, speech, out, "--engine", "hallo") == 0, capsys.readouterr().err
    info = read_video_info(out)
    assert (info.width, info.height, info.fps, info.frames) == (SIZE, SIZE, 25.0, FRAMES)
    assert info.has_audio and info.audio_duration == pytest.approx(1.5, abs=0.05)
    assert f"{FRAMES} frames, {SIZE}x{SIZE}" in capsys.readouterr().out
    [options] = clip_calls
    assert (options["num_frames"], options["steps"], options["guidance_scale"], options["seed"]) == (FRAMES, 2, 3.5, 42)
    assert options["patch_drop"] is None and options["motion_scale"] == (1.0, 1.0, 1.0)
    assert options["bank_dtype"] == torch.float16  # the official rounds the reference features to fp16
    assert ("vocal separation skipped: the weights folder has no audio_separator/Kim_Vocal_2.onnx; the audio is "
            "used as it is") in caplog.messages


def test_cli_hallo2_patch_drop_weights_and_context(weights, portrait_path, speech, tmp_path, capsys, clip_calls,
                                                   monkeypatch):
    from genhuman.audio_features import wav2vec

    contexts = []
    segment_features = wav2vec.segment_features

    def spy(model, wave, clip_length=0, segment_seconds=60.0, context_seconds=None):
        contexts.append((type(wave), clip_length, segment_seconds, context_seconds))
        return segment_features(model, wave, clip_length, segment_seconds, context_seconds)

    monkeypatch.setattr(wav2vec, "segment_features", spy)
    out = tmp_path / "hallo2.mp4"
    code = animate(weights, portrait_path, speech, out, "--engine", "hallo2", "--lip-weight", "1.5",
                   "--pose-weight", "0.5", "--context-seconds", "2")
    assert code == 0, capsys.readouterr().err
    info = read_video_info(out)
    assert (info.width, info.height, info.fps, info.frames, info.has_audio) == (SIZE, SIZE, 25.0, FRAMES, True)
    [options] = clip_calls
    assert options["patch_drop"] == 0.25 and options["motion_scale"] == (0.5, 1.0, 1.5)
    assert contexts == [(AudioClip, 16, 60.0, 2.0)]  # read from the temporary file, segment by segment


def test_first_clip_is_written_before_the_second_starts(engine, portrait_path, speech, tmp_path, monkeypatch):
    events: list[tuple[str, float]] = []
    denoise, write = HalloPipeline._denoise_clip, VideoWriter.write

    def clip_started(self, *args, **kwargs):
        events.append(("clip", time.perf_counter()))
        return denoise(self, *args, **kwargs)

    def frame_written(self, frame):
        events.append(("write", time.perf_counter()))
        return write(self, frame)

    monkeypatch.setattr(HalloPipeline, "_denoise_clip", clip_started)
    monkeypatch.setattr(VideoWriter, "write", frame_written)
    result = engine.animate(portrait_path, speech, tmp_path / "s.mp4", AnimateRequest(steps=1, width=SIZE))
    assert result.frames == FRAMES
    kinds = [kind for kind, _ in events]
    assert kinds == ["clip"] + ["write"] * 16 + ["clip"] + ["write"] * 16 + ["clip"] + ["write"] * 6
    times = [t for _, t in events]
    assert times == sorted(times)


def test_long_audio_features_are_computed_segment_by_segment(weights, engine, portrait_path, speech_path,
                                                             monkeypatch):
    """70 s of audio: the first clip needs only the first 60 s segment, and the second segment is
    never encoded when the video stops there; hallo keeps 10 s of context past 60 s, hallo2 none."""
    from genhuman.audio_features import wav2vec

    calls, encoded = [], []
    segment_features = wav2vec.segment_features

    def spy(model, wave, clip_length=0, segment_seconds=60.0, context_seconds=None):
        calls.append(context_seconds)
        for segment in segment_features(model, wave, clip_length, segment_seconds, context_seconds):
            encoded.append(segment.shape[0])
            yield segment

    monkeypatch.setattr(wav2vec, "segment_features", spy)
    wave = np.tile(load_audio(speech_path), 11)[:70 * 16000]
    request = AnimateRequest(steps=1, cfg=1.0, width=SIZE, extra={"max_frames": 16})
    hallo2 = load_engine("hallo2", EngineOptions(weights=weights))
    for each in (engine, hallo2):
        avatar = each.prepare_avatar(portrait_path, request=request)
        frames = list(each.stream(avatar, [wave[i:i + 16000] for i in range(0, len(wave), 16000)], request))
        assert [f.index for f in frames] == list(range(16))
    assert calls == [10.0, None] and encoded == [1500, 1500]


# ---------------------------------------------------------------- portraits and avatars


def test_non_square_portrait_is_cut_around_the_face_and_pasted_back(engine, portrait_path):
    portrait = load_image(portrait_path)[64:448]  # 512 wide, 384 high
    request = AnimateRequest(steps=1, cfg=1.0, width=SIZE, extra={"max_frames": 2})
    avatar = engine.prepare_avatar(portrait, request=request)
    assert avatar.meta["cropped"] and avatar.arrays["image"].shape[0] == avatar.arrays["image"].shape[1] <= 384
    frames = [f.image for f in engine.stream(avatar, [load_audio(portrait_path.parent / "speech.wav")[:16000]],
                                             request)]
    assert len(frames) == 2 and frames[0].shape == portrait.shape
    matrix = avatar.arrays["crop_matrix"]
    scale = matrix[0, 0]
    x0, y0, side = -matrix[0, 2] / scale, -matrix[1, 2] / scale, avatar.arrays["image"].shape[0] / scale
    reach = int(np.ceil(side / SIZE)) + 1  # bilinear reach of one 64 px frame pixel, in portrait pixels
    outside = np.ones(portrait.shape[:2], bool)
    outside[max(0, int(y0) - reach):int(y0 + side) + reach, max(0, int(x0) - reach):int(x0 + side) + reach] = False
    assert outside.sum() > 0.2 * outside.size
    assert np.array_equal(frames[0][outside], portrait[outside])  # untouched outside the cut
    inside = ~outside
    assert np.abs(frames[0][inside].astype(int) - portrait[inside]).mean() > 5  # generated inside


def test_square_portrait_is_used_whole_and_the_avatar_round_trips(engine, portrait_path, speech, tmp_path):
    request = AnimateRequest(steps=1, cfg=1.0, width=SIZE, extra={"max_frames": 3})
    avatar = engine.prepare_avatar(portrait_path, request=request)
    assert not avatar.meta["cropped"] and avatar.arrays["image"].shape == (512, 512, 3)
    assert avatar.arrays["face_embedding"].shape == (512,) and np.abs(avatar.arrays["face_embedding"]).sum() > 0
    loaded = Avatar.load(avatar.save(tmp_path / "avatar"))
    wave = load_audio(speech)
    first = [f.image for f in engine.stream(avatar, [wave], request)]
    again = [f.image for f in engine.stream(loaded, [wave], request)]
    assert len(first) == 3 and all(np.array_equal(a, b) for a, b in zip(first, again))
    with pytest.raises(InputError, match=r"^this avatar was prepared for 64 px frames, not 128; prepare it again"):
        next(iter(engine.stream(loaded, [wave], request.replace(width=128))))


# ---------------------------------------------------------------- bad inputs: one line, exit 2


def test_weights_without_face_analysis(weights, portrait_path, speech, tmp_path, capsys):
    root = tmp_path / "w"
    shutil.copytree(weights, root, copy_function=os.link)
    shutil.rmtree(root / "face_analysis")
    out = tmp_path / "x.mp4"
    assert animate(root, portrait_path, speech, out, "--engine", "hallo") == 2
    line = one_line_error(capsys)
    assert line.startswith(f"Hallo weights (hallo) incomplete in {str(root)!r}: missing "
                           "face_analysis/models/scrfd_10g_bnkps.onnx and glintr100.onnx (insightface's antelopev2")
    assert line.endswith(f"get them with `genhuman download hallo --dir {root}` (Hugging Face repo "
                         "fudan-generative-ai/hallo)")
    assert not out.exists()


def test_net_pth_of_another_family(weights, portrait_path, speech, tmp_path, capsys):
    from genhuman.models import EchoUNet3D, UNet3DConfig

    root = tmp_path / "w"
    shutil.copytree(weights, root, copy_function=os.link)
    (root / "hallo2" / "net.pth").unlink()
    torch.save(EchoUNet3D(UNet3DConfig.tiny()).state_dict(), root / "hallo2" / "net.pth")  # EchoMimic's denoiser
    assert animate(root, portrait_path, speech, tmp_path / "x.mp4", "--engine", "hallo2") == 2
    assert one_line_error(capsys) == (
        "hallo2/net.pth is not a Hallo net.pth: its keys do not start with reference_unet, denoising_unet, "
        "face_locator, imageproj, audioproj (keys such as conv_in.bias, conv_in.weight)")
    assert not (tmp_path / "x.mp4").exists()


def test_image_without_a_face(weights, speech, tmp_path, capsys):
    image = tmp_path / "wall.png"
    save_image(image, np.full((256, 256, 3), 128, np.uint8))
    assert animate(weights, image, speech, tmp_path / "x.mp4", "--engine", "hallo") == 2
    assert one_line_error(capsys) == "no face found in the portrait"
    assert not (tmp_path / "x.mp4").exists()


def test_silent_audio(weights, portrait_path, tmp_path, capsys):
    silence = tmp_path / "silence.wav"
    save_wav(silence, np.zeros(16000, np.float32))
    assert animate(weights, portrait_path, silence, tmp_path / "x.mp4", "--engine", "hallo2") == 2
    assert one_line_error(capsys) == "audio is silent: no speech found"
    assert not (tmp_path / "x.mp4").exists()


def test_segment_features_read_an_audio_clip_as_they_read_an_array(engine, speech_path):
    """The engine hands wav2vec2 the temporary-file clip, not an array: same features, both modes."""
    from genhuman.audio_features.wav2vec import segment_features

    wav2vec = engine.load(AnimateRequest()).audio_encoder
    wave = load_audio(speech_path)[:3 * 16000 + 321]
    with AudioClip.from_array(wave) as clip:
        for context in (None, 0.5):
            from_array = list(segment_features(wav2vec, wave, 16, 1.0, context))
            from_clip = list(segment_features(wav2vec, clip, 16, 1.0, context))
            assert [s.shape[0] for s in from_clip] == [s.shape[0] for s in from_array] and len(from_clip) == 4
            assert all(torch.equal(a, b) for a, b in zip(from_array, from_clip))
