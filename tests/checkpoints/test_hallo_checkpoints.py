"""Hallo / Hallo2 net.pth: official layout -> strict load (geometry from the shapes), round trip, errors."""

import pytest
import torch

from tests.models.conftest import randomize

from genhuman.checkpoints.hallo import hallo_config, hallo_net_file, load_hallo_net, save_tiny_hallo_net
from genhuman.errors import InputError, MissingWeightsError
from genhuman.models.hallo import HalloConfig, HalloMasks, HalloNet


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """``pretrained_models/{hallo,hallo2}/net.pth`` written from one tiny random HalloNet."""
    torch.manual_seed(0)
    net = randomize(HalloNet(HalloConfig.tiny()), 3)
    root = tmp_path_factory.mktemp("hallo") / "pretrained_models"
    for family in ("hallo", "hallo2"):
        (root / family).mkdir(parents=True)
        torch.save(net.state_dict(), root / family / "net.pth")
    return root, net


def outputs(net):
    """Every part of the network on fixed inputs, the denoiser with reference, masks and audio."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        tokens = torch.cat([net.imageproj(torch.zeros(1, 512)), net.imageproj(torch.randn(1, 512, generator=g))])
        audio = net.audioproj(torch.randn(2, 4, 5, 12, 768, generator=g))
        face = net.face_locator(torch.rand(2, 3, 1, 64, 64, generator=g))
        reference = net.prepare_reference(torch.randn(3, 4, 8, 8, generator=g), tokens)
        masks = HalloMasks(*[[torch.rand(1, (8 >> i) ** 2, generator=g) for i in range(4)] for _ in range(3)])
        v = net.denoising_unet(torch.randn(2, 4, 4, 8, 8, generator=g), 500, tokens, audio, face, masks,
                               (1.0, 0.5, 1.5), reference, [False, True])
    return tokens, audio, face, v


def test_tiny_official_net_pth_loads_strictly_with_its_geometry(weights):
    root, net = weights
    path = hallo_net_file(root.parent)  # a repo clone's parent: pretrained_models/ inside it
    assert path == root / "hallo" / "net.pth"
    loaded = load_hallo_net(path)
    assert not loaded.training
    expected = HalloConfig.tiny()
    assert loaded.config.denoising_unet.audio_widths == {  # read off proj_in, one per audio module
        n: m.inner for n, m in net.denoising_unet.named_modules() if type(m).__name__ == "AudioModule"}
    loaded.config.denoising_unet.audio_widths = {}
    assert loaded.config == expected
    state, adopted = torch.load(path, weights_only=True), loaded.state_dict()
    assert len(state) == len(adopted) and all(torch.equal(adopted[k], v) for k, v in state.items())
    for a, b in zip(outputs(loaded), outputs(net)):
        assert torch.equal(a, b)


def test_hallo2_uses_the_same_network(weights):
    root, net = weights
    loaded = load_hallo_net(hallo_net_file(root, "hallo2"))
    assert torch.equal(outputs(loaded)[-1], outputs(net)[-1])


def test_config_round_trips_through_a_dict():
    config = HalloConfig.tiny()
    config.denoising_unet.audio_widths = {"mid_block.audio_modules.0": 64}
    assert HalloConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown config keys"):
        HalloConfig.from_dict({"vae": {}})


def test_audio_module_widths_come_from_the_checkpoint(tmp_path):
    """A module whose inner width breaks the official rule still loads: the width is read per module."""
    config = HalloConfig.tiny()
    config.denoising_unet.audio_widths = {"down_blocks.1.audio_modules.0": 16}
    path = tmp_path / "hallo" / "net.pth"
    path.parent.mkdir()
    torch.save(HalloNet(config).state_dict(), path)
    loaded = load_hallo_net(path)
    assert loaded.denoising_unet.down_blocks[1].audio_modules[0].inner == 16
    assert loaded.denoising_unet.down_blocks[1].audio_modules[0].level == 1


def test_save_tiny_hallo_net_is_random_everywhere(tmp_path):
    net = load_hallo_net(save_tiny_hallo_net(tmp_path / "hallo" / "net.pth", seed=2))
    conv = net.denoising_unet.mid_block.audio_modules[0].transformer_blocks[0].zero_conv_lip
    assert conv.weight.abs().min() > 0  # the audio branch is live


def test_other_family_file_is_one_input_error(tmp_path):
    from genhuman.models import EchoUNet3D, UNet3DConfig

    path = tmp_path / "hallo" / "net.pth"
    path.parent.mkdir()
    torch.save(EchoUNet3D(UNet3DConfig.tiny()).state_dict(), path)  # an EchoMimic denoising_unet.pth
    with pytest.raises(InputError, match=r"^hallo/net\.pth is not a Hallo net\.pth: its keys do not start with "
                                         r"reference_unet, denoising_unet, face_locator, imageproj, audioproj "
                                         r"\(keys such as conv_in\.bias, conv_in\.weight\)$"):
        load_hallo_net(path)


def test_corrupt_truncated_and_mismatched_files(weights, tmp_path):
    root, _ = weights
    path = tmp_path / "hallo" / "net.pth"
    path.parent.mkdir()
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"^cannot read weights net\.pth: damaged, truncated or not a weights file$"):
        load_hallo_net(path)
    path.write_bytes((root / "hallo" / "net.pth").read_bytes()[:100_000])
    with pytest.raises(InputError, match=r"^cannot read weights net\.pth"):
        load_hallo_net(path)
    state = torch.load(root / "hallo" / "net.pth", weights_only=True)
    del state["denoising_unet.up_blocks.2.audio_modules.1.transformer_blocks.0.attn2_1.to_v.weight"]
    state["denoising_unet.conv_out.bias"] = torch.zeros(3)
    torch.save(state, path)
    with pytest.raises(InputError, match=r"^hallo/net\.pth does not match the model: 1 missing \(e\.g\. denoising_unet"
                                         r"\.up_blocks\.2\.audio_modules\.1\.transformer_blocks\.0\.attn2_1\.to_v\."
                                         r"weight\); 1 wrong shape \(e\.g\. denoising_unet\.conv_out\.bias\)$"):
        load_hallo_net(path)


def test_incomplete_shapes_and_wrong_audio_windows(weights, tmp_path):
    root, _ = weights
    state = torch.load(root / "hallo" / "net.pth", weights_only=True)
    path = tmp_path / "net.pth"
    with pytest.raises(InputError, match=r"^net\.pth is not a Hallo net\.pth: its network shapes are incomplete$"):
        hallo_config({k: v for k, v in state.items() if not k.startswith("imageproj.norm")})
    state["audioproj.proj1.weight"] = torch.zeros(64, 100)
    torch.save(state, path)
    with pytest.raises(InputError, match=r"audioproj takes 100 values per frame, not the 46080"):
        load_hallo_net(path)


def test_missing_net_pth_names_the_download(tmp_path):
    with pytest.raises(MissingWeightsError, match=r"^hallo2/net\.pth is missing in .*; get it with `genhuman download "
                                                  r"hallo2 --dir .*` \(Hugging Face repo fudan-generative-ai/hallo2\)$"):
        hallo_net_file(tmp_path, "hallo2")
    with pytest.raises(InputError, match="unknown Hallo family 'hallo3'"):
        hallo_net_file(tmp_path, "hallo3")
