"""Tolerances that scale with the values compared, the way diffusers compares.

Different CPUs (Intel Xeon vs AMD EPYC, AVX2 vs AVX-512) and thread counts sum float32
products in different orders, so a fixed ``atol`` that holds on one machine fails on another
once the values are larger than about 1. ``assert_close`` allows ``rtol`` of each value plus
``atol_scale`` times the largest magnitude in the expected tensor.
"""

from __future__ import annotations

import torch


def scaled_atol(expected: torch.Tensor, atol_scale: float = 1e-5) -> float:
    return atol_scale * max(float(expected.detach().abs().max()), 1e-12)


def assert_close(actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-4, atol_scale: float = 1e-5) -> None:
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=scaled_atol(expected, atol_scale))


def differs(a: torch.Tensor, b: torch.Tensor, atol_scale: float = 1e-3) -> bool:
    """True when ``a`` and ``b`` differ by far more than rounding (for "this input matters" checks)."""
    return float((a - b).abs().max()) > scaled_atol(b, atol_scale)
