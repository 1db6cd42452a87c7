"""Argument types shared by sub-commands: they reject absurd values with one clear line."""

from __future__ import annotations

import argparse


def int_range(lo: int, hi: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be between {lo} and {hi}, got {value}")
        return value

    return parse


def float_range(lo: float, hi: float):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not lo <= value <= hi:  # also rejects nan
            raise argparse.ArgumentTypeError(f"must be between {lo} and {hi}, got {text}")
        return value

    return parse
