import dataclasses

import pytest

from genhuman.cli import main
from genhuman.curate import CurateConfig
from genhuman.errors import InputError


def test_defaults_carry_the_published_thresholds():
    config = CurateConfig()
    assert config.shots.adaptive_threshold == 2.0  # LatentSync
    assert config.segments.length_s == 5.0  # LatentSync
    assert (config.luminance.min_mean, config.luminance.max_mean) == (10.0, 210.0)  # OpenHumanVid
    assert config.lipsync.min_syncnet_confidence == 3.0  # LatentSync
    assert config.output.fps == 25


def test_yaml_sets_fields_and_keeps_types(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("segments:\n  length_s: 3\nface:\n  max_abs_yaw_deg: 20\nspeech:\n  use_model: false\n")
    config = CurateConfig.from_yaml(path)
    assert config.segments.length_s == 3.0 and isinstance(config.segments.length_s, float)
    assert config.face.max_abs_yaw_deg == 20.0 and config.speech.use_model is False
    assert CurateConfig.from_dict(config.to_dict()) == config
    # everything else stays at its default
    assert dataclasses.replace(config.blur) == CurateConfig().blur


@pytest.mark.parametrize("text, message", [
    ("blur:\n  sharpness: 3\n", "unknown key blur.sharpness"),
    ("colour: {}\n", "unknown section 'colour'"),
    ("face:\n  min_face_share: yes\n", "face.min_face_share must be float"),
    ("dedup:\n  keyframes: 2.5\n", "dedup.keyframes must be an integer"),
])
def test_bad_config_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message.replace(".", r"\.").replace("(", r"\(")):
        CurateConfig.from_yaml(path)


def test_cli_bad_config_exits_2_with_one_line(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("motion:\n  min_flow: 1\n")
    video = tmp_path / "a.mp4"
    video.write_bytes(b"")
    assert main(["data", "curate", str(video), str(tmp_path / "out"), "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown key motion.min_flow" in err[0]
    assert not (tmp_path / "out").exists()
