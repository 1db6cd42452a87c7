"""GenHuman: a portrait plus speech becomes a lip-synced talking video."""

__version__ = "0.1.0"

from genhuman.errors import GenHumanError, InputError  # noqa: E402


def animate(*args, **kwargs):
    """Animate a portrait with speech; see :func:`genhuman.api.animate`."""
    from genhuman.api import animate as _animate

    return _animate(*args, **kwargs)


__all__ = ["animate", "GenHumanError", "InputError", "__version__"]
