"""Real-ESRGAN's RRDBNet (Hallo2's background upscaler): names, geometry, strict round trip, errors."""

import pytest
import torch

from genhuman.checkpoints.realesrgan import load_realesrgan, realesrgan_file, save_tiny_realesrgan
from genhuman.errors import InputError
from genhuman.models.rrdbnet import RRDBConfig, RRDBNet


def test_x2plus_geometry_has_the_released_names_and_shapes():
    with torch.device("meta"):
        state = RRDBNet(RRDBConfig()).state_dict()
    # 23 RRDBs x 3 dense blocks x 5 convs x (weight, bias) + 6 convs outside the trunk
    assert len(state) == 23 * 3 * 5 * 2 + 6 * 2
    assert state["conv_first.weight"].shape == (64, 12, 3, 3)  # RGB pixel-unshuffled by 2
    assert state["body.22.rdb3.conv5.weight"].shape == (64, 64 + 4 * 32, 3, 3)
    assert state["body.0.rdb1.conv1.weight"].shape == (32, 64, 3, 3)
    assert {k.split(".")[0] for k in state} == {"conv_first", "body", "conv_body", "conv_up1", "conv_up2",
                                                "conv_hr", "conv_last"}


def test_tiny_file_loads_strictly_and_doubles_the_size(tmp_path):
    path = save_tiny_realesrgan(tmp_path / "realesrgan" / "RealESRGAN_x2plus.pth", seed=1)
    assert realesrgan_file(tmp_path) == path and realesrgan_file(tmp_path / "none") is None
    net = load_realesrgan(path)
    assert net.config.scale == 2 and net.config.num_block == 1 and net.config.num_feat == 8
    x = torch.rand(1, 3, 10, 14)
    y = net(x)
    assert y.shape == (1, 3, 20, 28)
    reference = RRDBNet(net.config)
    reference.load_state_dict(torch.load(path, weights_only=True)["params_ema"])
    assert torch.equal(reference(x), y)


def test_a_wrong_file_is_one_line(tmp_path):
    flat = tmp_path / "flat.pth"
    torch.save({"conv.weight": torch.zeros(1)}, flat)
    with pytest.raises(InputError, match="not a Real-ESRGAN checkpoint"):
        load_realesrgan(flat)
    broken = tmp_path / "broken.pth"
    torch.save({"params_ema": {"conv_first.weight": torch.zeros(8, 12, 3, 3)}}, broken)
    with pytest.raises(InputError, match="shapes are incomplete"):
        load_realesrgan(broken)
