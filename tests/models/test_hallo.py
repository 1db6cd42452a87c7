"""The Hallo network: full-size keys equal the official net.pth; the audio modules (spec hallo.md
1.3); motion frames into the motion modules; the official reference semantics."""

import copy
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from tests.models.conftest import randomize
from tests.models.test_keys import official, shapes
from tests.numeric import assert_close, differs

from genhuman.models.attention import ForwardContext, ReferenceKV, _with_reference
from genhuman.models.audio_attention import AudioModule, AudioModuleInputs, AudioTransformerBlock
from genhuman.models.hallo import HalloConfig, HalloMasks, HalloNet, HalloReference
from genhuman.models.motion import MotionModule

FRAMES, H, W, MOTION = 16, 8, 8, 2  # the official clip; 8x8 latents give the 4 levels 8, 4, 2, 1
WIDTH = HalloConfig.tiny().denoising_unet.cross_attention_dim


def test_full_size_keys_equal_official_net_pth():
    with torch.device("meta"):
        got = shapes(HalloNet(HalloConfig.sd15()))
    expected = official("hallo_net_pth_keys.tsv")
    assert len(expected) == 2656
    assert got == expected
    # the quirk the shapes encode: audio inner width = the layer's input width, not the block's
    assert got["denoising_unet.down_blocks.1.audio_modules.0.proj_in.weight"] == (320, 640, 1, 1)
    assert got["denoising_unet.up_blocks.1.audio_modules.2.proj_in.weight"] == (640, 1280, 1, 1)


def masks_for(b, generator):
    """Random soft masks per level, one per sample and frame."""
    levels = [(H >> i) * (W >> i) for i in range(4)]
    return HalloMasks(*[[torch.rand(b, FRAMES, n, generator=generator) for n in levels] for _ in range(3)])


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return randomize(HalloNet(HalloConfig.tiny()), 7)


@pytest.fixture(scope="module")
def clip(net):
    """One CFG clip as the official pipeline builds it: [uncond, cond] everywhere."""
    g = torch.Generator().manual_seed(3)
    face = net.imageproj(torch.randn(1, 512, generator=g))
    tokens = torch.cat([net.imageproj(torch.zeros(1, 512)), face])
    audio = net.audioproj(torch.randn(1, FRAMES, 5, 12, 768, generator=g))
    locator = net.face_locator((torch.rand(1, 3, 1, H * 8, W * 8, generator=g) > 0.5).float())
    with torch.no_grad():
        reference = net.prepare_reference(torch.randn(1 + MOTION, 4, H, W, generator=g), tokens)
    return dict(sample=torch.randn(2, 4, FRAMES, H, W, generator=g), encoder_hidden_states=tokens.detach(),
                audio_tokens=torch.cat([torch.zeros_like(audio), audio]).detach(),
                face_features=torch.cat([torch.zeros_like(locator), locator]).detach(),
                masks=masks_for(2, g), reference=reference, use_reference=[False, True])


def denoise(unet, clip, **changes):
    with torch.no_grad():
        return unet(clip["sample"], 999, **{k: v for k, v in {**clip, **changes}.items() if k != "sample"})


def test_forward_shapes_and_reference_split(net, clip):
    ref = clip["reference"]
    assert len(ref.kv.blocks) == len(ref.motion_frames) == 10  # every spatial transformer of the tiny UNet
    k, v = ref.kv.blocks["down_blocks.1.attentions.0.transformer_blocks.0"]
    assert k.shape == v.shape == (2, (H // 2) * (W // 2), 64)  # frame 0 of each CFG half
    assert ref.motion_frames["mid_block.attentions.0.transformer_blocks.0"].shape == (2, MOTION, 1, 64)
    out = denoise(net.denoising_unet, clip, motion_scale=(1.0, 0.5, 2.0))
    assert out.shape == (2, 4, FRAMES, H, W) and torch.isfinite(out).all()


def test_reference_pass_pairs_latents_and_tokens_as_officially(net, clip):
    """ReferenceNet batch = [r, m1, m2] per CFG half; tokens repeated: [u, c, u, c, u, c]."""
    seen = {}

    def spy(latents, timestep, context):
        seen.update(latents=latents, timestep=timestep, context=context)
        return {name: torch.zeros(latents.shape[0], 1, 1) for name in clip["reference"].motion_frames}

    g = torch.Generator().manual_seed(11)
    latents, tokens = torch.randn(3, 4, H, W, generator=g), torch.randn(2, 4, WIDTH, generator=g)
    fake = SimpleNamespace(reference_unet=spy,
                           denoising_unet=SimpleNamespace(prepare_reference=lambda bank, s: (bank, s)))
    _, frames_per_sample = HalloNet.prepare_reference(fake, latents, tokens)
    assert frames_per_sample == 3 and seen["timestep"] == 0
    assert torch.equal(seen["latents"], torch.cat([latents, latents]))
    assert torch.equal(seen["context"], tokens[[0, 1, 0, 1, 0, 1]])


def test_bank_dtype_rounds_reference_features(net):
    g = torch.Generator().manual_seed(12)
    latents, tokens = torch.randn(3, 4, H, W, generator=g), torch.randn(1, 4, WIDTH, generator=g)
    exact = net.prepare_reference(latents, tokens)
    rounded = net.prepare_reference(latents, tokens, bank_dtype=torch.float16)
    name = "up_blocks.3.attentions.0.transformer_blocks.0"
    assert rounded.motion_frames[name].dtype == torch.float16
    assert torch.equal(rounded.motion_frames[name], exact.motion_frames[name].half())


def test_zero_initialised_zero_convs_make_the_audio_branch_add_nothing():
    torch.manual_seed(1)
    unet = HalloNet(HalloConfig.tiny()).denoising_unet.eval()  # fresh init: zero-convs are zero
    convs = [m for n, m in unet.named_modules() if "zero_conv" in n]
    assert len(convs) == 3 * 10 and all(not c.weight.any() and not c.bias.any() for c in convs)
    g = torch.Generator().manual_seed(4)
    sample, tokens = torch.randn(2, 4, FRAMES, H, W, generator=g), torch.randn(2, 4, WIDTH, generator=g)
    base = denoise(unet, dict(sample=sample, encoder_hidden_states=tokens))
    loud = torch.randn(2, FRAMES, 32, WIDTH, generator=g) * 10
    for changes in ({"audio_tokens": loud}, {"masks": masks_for(2, g)}, {"motion_scale": (3.0, -2.0, 7.0)}):
        assert torch.equal(denoise(unet, dict(sample=sample, encoder_hidden_states=tokens), **changes), base)


def conv1x1(conv, tokens):
    return torch.einsum("nlc,oc->nlo", tokens, conv.weight[:, :, 0, 0]) + conv.bias


def independent_audio_block(block, x, audio, masks, scale):
    """Spec 1.3 written out with diffusers' own attention processors and a 1x1 conv as a matmul."""
    h = block.attn1(block.norm1(x)) + x
    n = block.norm2(h)
    full, face, lip = (conv1x1(conv, attn(n, encoder_hidden_states=audio) * mask)
                       for attn, conv, mask in zip((block.attn2_0, block.attn2_1, block.attn2_2),
                                                   (block.zero_conv_full, block.zero_conv_face, block.zero_conv_lip),
                                                   masks))
    h = scale[0] * full + scale[1] * face + scale[2] * lip + h
    return block.ff(block.norm3(h)) + h


@pytest.mark.parametrize("scale", [(1.0, 1.0, 1.0), (0.0, 1.0, 0.0), (0.3, -1.5, 2.0)])
def test_audio_block_equals_spec_with_motion_scale(scale):
    torch.manual_seed(2)
    block = randomize(AudioTransformerBlock(32, 8, 24), 5)
    g = torch.Generator().manual_seed(6)
    grid = (4, 6)  # any grid: the 1x1 convs run on the real h x w layout
    x, audio = torch.randn(3, 24, 32, generator=g), torch.randn(3, 7, 24, generator=g)
    masks = [torch.rand(3, 24, 1, generator=g) for _ in range(3)]
    inputs = AudioModuleInputs(audio, tuple([torch.zeros(3, 99, 1), m] for m in masks), scale)  # level 1
    with torch.no_grad():
        got = block(x, grid, inputs, level=1)
        expected = independent_audio_block(block, x, audio, masks, scale)
        silent = independent_audio_block(block, x, audio, masks, (0.0, 0.0, 0.0))
    assert_close(got, expected)
    assert differs(got, silent) == any(scale)


def test_audio_module_reads_its_level_and_refuses_wrong_masks():
    torch.manual_seed(3)
    module = randomize(AudioModule(64, 32, 8, 32, WIDTH), 8)
    x = torch.randn(2, 64, 4, 4)
    good = [torch.rand(2, 16, 1) for _ in range(3)]
    inputs = AudioModuleInputs(torch.randn(2, 5, WIDTH), tuple([torch.rand(2, 64, 1), m] for m in good))
    module.level = 1
    with torch.no_grad():
        out = module(x, ForwardContext(batch=2, frames=1, audio_modules=inputs))
    assert out.shape == x.shape
    module.level = 0
    with pytest.raises(ValueError, match="full mask of level 0 has 64 values; that level's latent grid has 16"):
        module(x, ForwardContext(batch=2, frames=1, audio_modules=inputs))


def test_motion_module_sees_18_frames_and_returns_16():
    torch.manual_seed(4)
    module = randomize(MotionModule(32, 8, 32, 32), 9)
    g = torch.Generator().manual_seed(7)
    x, motion = torch.randn(2 * FRAMES, 32, 4, 4, generator=g), torch.randn(2, MOTION, 32, 4, 4, generator=g)
    seen = []
    module.temporal_transformer.register_forward_hook(lambda mod, args, out: seen.append((args[0].shape[0], args[1])))
    with torch.no_grad():
        out = module(x, FRAMES, motion)
        joined = torch.cat([motion, x.view(2, FRAMES, 32, 4, 4)], dim=1).reshape(-1, 32, 4, 4)
        expected = module.temporal_transformer(joined, FRAMES + MOTION).view(2, -1, 32, 4, 4)[:, MOTION:]
        other = module(x, FRAMES, motion + torch.randn(motion.shape, generator=g))
        plain = module(x, FRAMES)
    assert seen[0] == (2 * (FRAMES + MOTION), FRAMES + MOTION) and seen[-1] == (2 * FRAMES, FRAMES)
    assert out.shape == x.shape
    assert torch.equal(out, expected.reshape(x.shape))
    assert differs(out, other) and differs(out, plain)


def test_denoiser_motion_modules_read_the_reference_motion_frames(net, clip):
    ref = clip["reference"]
    out = denoise(net.denoising_unet, clip)
    g = torch.Generator().manual_seed(8)  # random changes: a constant shift would vanish in the GroupNorm
    moved = HalloReference(ref.kv, {n: t + torch.randn(t.shape, generator=g) for n, t in ref.motion_frames.items()})
    out_moved = denoise(net.denoising_unet, clip, reference=moved)
    for half in (0, 1):  # the uncond half gets motion frames too, as officially
        assert differs(out_moved[half], out[half])


def test_blocks_without_transformers_never_run_their_motion_modules(net, clip):
    """Official inference (training mode + checkpointing) skips them; their weights still load."""
    out = denoise(net.denoising_unet, clip)
    unet = copy.deepcopy(net.denoising_unet)
    with torch.no_grad():
        for block in (unet.down_blocks[3], unet.up_blocks[0]):
            for p in block.motion_modules.parameters():
                p.add_(1.0)
    assert torch.equal(denoise(unet, clip), out)
    with torch.no_grad():
        for p in unet.down_blocks[2].motion_modules.parameters():
            p.add_(1.0)
    assert differs(denoise(unet, clip), out)


def test_reference_is_tiled_over_frames_as_officially():
    """Row n of [(b f)] reads reference sample n mod b: the cond half's even frames read the uncond
    half's reference features (the official 3-D ``.repeat(1, f, 1, 1)``)."""
    own = torch.zeros(1, 4, 2, 3)
    ref = torch.stack([torch.full((5, 3), 10.0), torch.full((5, 3), 20.0)])
    joined = _with_reference(own, ref, start=1, stop=2, cycle=True)  # the cond run of a CFG batch of 2
    assert joined.shape == (1, 4, 7, 3)
    assert joined[0, :, 2:, 0].mean(dim=1).tolist() == [10.0, 20.0, 10.0, 20.0]
    assert _with_reference(own, ref, 1, 2)[0, :, 2:, 0].unique().tolist() == [20.0]  # EchoMimic: its own


def test_cond_half_depends_on_the_uncond_reference_sample(net, clip):
    ref = clip["reference"]
    out = denoise(net.denoising_unet, clip)
    kv = ReferenceKV({n: (torch.cat([k[:1] + 1.0, k[1:]]), torch.cat([v[:1] - 1.0, v[1:]]))
                      for n, (k, v) in ref.kv.blocks.items()}, cycle_over_frames=True)
    moved = denoise(net.denoising_unet, clip, reference=HalloReference(kv, ref.motion_frames))
    assert torch.equal(moved[0], out[0])  # the uncond half attends to no reference
    assert differs(moved[1], out[1])


def test_projections_match_the_official_formulas(net):
    g = torch.Generator().manual_seed(9)
    windows, embedding = torch.randn(2, 3, 5, 12, 768, generator=g), torch.randn(2, 512, generator=g)
    a, i = net.audioproj, net.imageproj
    with torch.no_grad():
        tokens = a(windows)
        x = F.relu(a.proj2(F.relu(a.proj1(windows.reshape(6, -1)))))
        expected = a.norm(a.proj3(x).reshape(6, 32, WIDTH)).view(2, 3, 32, WIDTH)
        image = i(embedding)
    assert tokens.shape == (2, 3, 32, WIDTH) and torch.equal(tokens, expected)
    assert torch.equal(image, i.norm(i.proj(embedding).reshape(2, 4, WIDTH)))
    with pytest.raises(ValueError, match="audio windows of 19200 values per frame"):
        a(windows[:, :, :, :5])
