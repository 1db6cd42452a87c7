"""Image loading: any common format or mode becomes an RGB uint8 array, or an InputError.

Transparent images are composited on white (a portrait on a transparent background
reads as a studio shot; black would merge with dark hair).

Memory is bounded by the pixel cap (``GENHUMAN_MAX_IMAGE_PIXELS``, see
:mod:`genhuman.media.limits`): the declared size is checked before any pixel is decoded, the
decoded size again after, and the conversion to RGB runs in bands of rows, so a 49 Mpx
picture costs its decoded pixels and the result, not five full-size copies.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Iterator, Optional, Union

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from genhuman.errors import InputError
from genhuman.media.limits import DEFAULT_MAX_PIXELS, max_image_pixels

ImageInput = Union[str, Path, np.ndarray]

__all__ = ["DEFAULT_MAX_PIXELS", "load_image", "probe_image", "resize_max", "save_image"]
BAND_ROWS = 256  # rows converted at a time
ORIENTATION = 0x0112  # the EXIF tag exif_transpose acts on
MIN_SIDE = 64
SUPPORTED_FORMATS = {"JPEG", "PNG", "WEBP", "BMP", "MPO"}  # MPO: JPEG from phone cameras


def load_image(source: ImageInput, max_pixels: Optional[int] = None, min_side: int = MIN_SIDE) -> np.ndarray:
    """Return the image as an HxWx3 uint8 RGB array (EXIF orientation applied).

    ``max_pixels``: None takes GENHUMAN_MAX_IMAGE_PIXELS, else 50,000,000."""
    max_pixels = max_image_pixels(max_pixels)
    if isinstance(source, np.ndarray):
        image = _validate_array(source)
    else:
        image = _read_file(Path(source), max_pixels)
    height, width = image.shape[:2]
    if height < min_side or width < min_side:
        raise InputError(f"image is too small ({width}x{height}); need at least {min_side}x{min_side}")
    if height * width > max_pixels:
        raise InputError(f"image is too large ({width}x{height}); the limit is {max_pixels:,} pixels")
    return image


def probe_image(source: Union[str, Path], max_pixels: Optional[int] = None,
                min_side: int = MIN_SIDE) -> tuple[int, int]:
    """(width, height) from the file's header alone: format and declared size are checked
    without decoding a pixel, so a server can refuse a decompression bomb or an absurd size
    for the cost of reading a few bytes. :func:`load_image` applies the same checks."""
    path = Path(source)
    with _opened(path, max_image_pixels(max_pixels)) as img:
        width, height = img.size
    if height < min_side or width < min_side:
        raise InputError(f"image is too small ({width}x{height}); need at least {min_side}x{min_side}")
    return width, height


@contextlib.contextmanager
def _opened(path: Path, max_pixels: int) -> Iterator[Image.Image]:
    """The file opened lazily by PIL (header read, pixels not decoded), its format and
    declared size checked; every failure inside the block becomes one InputError."""
    if not path.exists():
        raise InputError(f"image file not found: {str(path)!r}")
    if path.is_dir():
        raise InputError(f"image path is a directory, not a file: {str(path)!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies
            with Image.open(path) as img:
                if img.format not in SUPPORTED_FORMATS:
                    raise InputError(f"unsupported image format {img.format} in {str(path)!r}; "
                                     "use JPEG, PNG, WebP or BMP")
                width, height = img.size
                # Checked before decoding so a bomb never allocates its pixels.
                if width * height > max_pixels:
                    raise InputError(f"image {str(path)!r} is too large ({width}x{height}); "
                                     f"the limit is {max_pixels:,} pixels")
                yield img
    except InputError:
        raise
    except PermissionError:
        raise InputError(f"cannot read image {str(path)!r}: permission denied") from None
    except UnidentifiedImageError:
        raise InputError(f"{str(path)!r} is not an image in a supported format "
                         "(JPEG, PNG, WebP or BMP)") from None
    except Image.DecompressionBombError:
        raise InputError(f"image {str(path)!r} is too large to decode safely") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"image {str(path)!r} is corrupt or truncated ({exc})") from None


def _read_file(path: Path, max_pixels: int) -> np.ndarray:
    with _opened(path, max_pixels) as img:
        declared = img.size
        img.load()
        width, height = img.size
        # A decoder may settle on another size than the header's (e.g. a JPEG's DNL marker).
        if img.size != declared and width * height > max_pixels:
            raise InputError(f"image {str(path)!r} decodes to {width}x{height}, larger than its header "
                             f"says; the limit is {max_pixels:,} pixels")
        if img.getexif().get(ORIENTATION, 1) != 1:  # exif_transpose copies even when upright
            img = ImageOps.exif_transpose(img)
        return _to_rgb(img)


def _to_rgb(img: Image.Image) -> np.ndarray:
    """Band by band: each band's conversion makes small temporaries, written into the result."""
    width, height = img.size
    top = None
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit / 32-bit grayscale: scale the full range down to 8 bits.
        highest = img.getextrema()[1]
        top = 65535.0 if img.mode.startswith("I;16") or float(highest) > 255 else 255.0  # type: ignore[arg-type]
    out = np.empty((height, width, 3), np.uint8)
    for y in range(0, height, BAND_ROWS):
        band = img.crop((0, y, width, min(y + BAND_ROWS, height)))
        out[y:y + band.height] = _band_rgb(band, top)
    return out


def _band_rgb(img: Image.Image, top: Optional[float]) -> np.ndarray:
    if top is not None:
        array = np.asarray(img, dtype=np.float64)
        return np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)[:, :, None]
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.asarray(img if img.mode == "RGB" else img.convert("RGB"), dtype=np.uint8)


def _validate_array(array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise InputError(f"image array must be HxW, HxWx3 or HxWx4, got shape {array.shape}")
    if array.dtype == np.uint16:
        array = (array.astype(np.float64) / 65535.0 * 255.0 + 0.5).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise InputError("image array contains NaN or infinite values")
        array = np.clip(array * 255.0 + 0.5, 0, 255).astype(np.uint8)  # floats are taken as 0..1
    elif array.dtype != np.uint8:
        raise InputError(f"image array must be uint8, uint16 or float in 0..1, got {array.dtype}")
    if array.shape[2] == 4:
        alpha = array[:, :, 3:4].astype(np.float32) / 255.0
        array = (array[:, :, :3] * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)
    return np.ascontiguousarray(array)


def resize_max(image: np.ndarray, max_size: int | None) -> np.ndarray:
    """Shrink so the longer side is at most ``max_size`` (aspect kept); never enlarges."""
    if max_size is None:
        return image
    if max_size < 1:
        raise InputError(f"max size must be positive, got {max_size}")
    height, width = image.shape[:2]
    longer = max(height, width)
    if longer <= max_size:
        return image
    scale = max_size / longer
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def save_image(path: str | Path, image: np.ndarray) -> None:
    """Write an RGB uint8 array (format from the suffix), creating the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
