"""The official SD latent conventions: [-1, 1] pixels, posterior mean x 0.18215, decode
/ 0.18215, (x / 2 + 0.5) clamped, uint8 by truncation."""

from types import SimpleNamespace

import numpy as np
import torch

from genhuman.pipelines.vae_io import decode_frames, encode_image


class _IdentityVae:
    """encode: mean = the pixels (a sample would differ); decode: returns what it was given."""

    def __init__(self):
        self.decoded = []

    def encode(self, pixels):
        return SimpleNamespace(latent_dist=SimpleNamespace(mean=pixels, sample=lambda: pixels + 1))

    def decode(self, latents):
        self.decoded.append(latents)
        return SimpleNamespace(sample=latents)


def test_encode_uses_the_mean_of_pixels_in_minus_one_one_scaled():
    image = np.array([[[0, 51, 255]]], np.uint8)  # one RGB pixel, channel order kept
    latent = encode_image(_IdentityVae(), image, torch.device("cpu"), torch.float32)
    assert latent.shape == (1, 3, 1, 1)
    expected = np.array([-1.0, 51 / 255 * 2 - 1, 1.0]) * 0.18215  # -0.6 for 51
    np.testing.assert_allclose(latent.flatten().numpy(), expected, rtol=1e-6)


def test_decode_unscales_clamps_and_truncates_to_uint8():
    # (v/2 + 0.5) x 255 = 100.75 -> 100 (truncation, not 101); 2.0 -> 255; -3.0 -> 0
    wanted = torch.tensor([100.75 / 127.5 - 1, 2.0, -3.0])
    latents = (wanted * 0.18215).view(1, 3, 1, 1, 1).repeat(1, 1, 3, 1, 1)  # (1, C=3, L=3, 1, 1)
    vae = _IdentityVae()
    frames = list(decode_frames(vae, latents, batch=2, dtype=torch.float32))
    assert len(frames) == 3 and [v.shape[0] for v in vae.decoded] == [2, 1]
    for frame in frames:
        assert frame.dtype == np.uint8 and frame.shape == (1, 1, 3)
        assert frame[0, 0].tolist() == [100, 255, 0]
