from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genhuman.errors import InputError
from genhuman.media import load_image, resize_max

RNG = np.random.default_rng(0)
PIXELS = RNG.integers(0, 256, (80, 120, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".webp"])
def test_lossless_formats_round_trip(tmp_path, suffix):
    path = tmp_path / f"img{suffix}"
    Image.fromarray(PIXELS).save(path, **({"lossless": True} if suffix == ".webp" else {}))
    out = load_image(path)
    assert out.dtype == np.uint8 and out.shape == (80, 120, 3)
    np.testing.assert_array_equal(out, PIXELS)


def test_jpeg_decodes_close(tmp_path):
    smooth = np.repeat(np.linspace(0, 255, 120, dtype=np.uint8)[None, :, None], 80, 0).repeat(3, 2)
    Image.fromarray(smooth).save(tmp_path / "a.jpg", quality=95)
    out = load_image(tmp_path / "a.jpg")
    assert np.abs(out.astype(int) - smooth).mean() < 2


def test_exif_orientation_applied(tmp_path):
    # Stored 120 wide x 80 high with orientation 6 (rotate 90 CW to display): shown 80 wide.
    img = Image.fromarray(PIXELS)
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(tmp_path / "rot.png", exif=exif)  # PNG eXIf chunk: lossless, so exact comparison
    out = load_image(tmp_path / "rot.png")
    np.testing.assert_array_equal(out, np.rot90(PIXELS, k=-1))  # 90 degrees clockwise
    img.save(tmp_path / "rot.jpg", exif=exif)
    assert load_image(tmp_path / "rot.jpg").shape == (120, 80, 3)


def test_grayscale_and_16bit(tmp_path):
    gray = RNG.integers(0, 256, (70, 90), dtype=np.uint8)
    Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
    out = load_image(tmp_path / "g.png")
    assert out.shape == (70, 90, 3)
    np.testing.assert_array_equal(out[:, :, 1], gray)
    deep = (gray.astype(np.uint16) * 257)
    Image.fromarray(deep).save(tmp_path / "g16.png")
    np.testing.assert_array_equal(load_image(tmp_path / "g16.png")[:, :, 0], gray)


def test_rgba_composited_on_white(tmp_path):
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[:, :32] = (255, 0, 0, 255)  # opaque red left, transparent right
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert tuple(out[0, 0]) == (255, 0, 0) and tuple(out[0, 63]) == (255, 255, 255)


def test_cmyk_and_palette(tmp_path):
    Image.fromarray(PIXELS).convert("CMYK").save(tmp_path / "c.jpg", quality=100)
    assert load_image(tmp_path / "c.jpg").shape == (80, 120, 3)
    pal = Image.fromarray(PIXELS).convert("P")
    pal.save(tmp_path / "p.png")
    np.testing.assert_array_equal(load_image(tmp_path / "p.png"), np.asarray(pal.convert("RGB")))


def test_too_small_and_too_large(tmp_path):
    Image.new("RGB", (3, 3)).save(tmp_path / "tiny.png")
    with pytest.raises(InputError, match=r"too small \(3x3\); need at least 64x64"):
        load_image(tmp_path / "tiny.png")
    Image.new("RGB", (2000, 2000)).save(tmp_path / "big.png")
    with pytest.raises(InputError, match="too large"):
        load_image(tmp_path / "big.png", max_pixels=1_000_000)


def test_bad_files_name_the_file(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("hello, not an image")
    with pytest.raises(InputError, match="notes.png.*not an image"):
        load_image(text)
    with pytest.raises(InputError, match="not found.*missing.png"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(InputError, match="directory"):
        load_image(tmp_path)
    Image.fromarray(PIXELS).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.png.*corrupt"):
        load_image(tmp_path / "cut.png")
    Image.fromarray(PIXELS).save(tmp_path / "a.tiff")
    with pytest.raises(InputError, match="unsupported image format TIFF"):
        load_image(tmp_path / "a.tiff")


def test_array_input_validated():
    np.testing.assert_array_equal(load_image(PIXELS), PIXELS)
    assert load_image(PIXELS[:, :, 0]).shape == (80, 120, 3)
    np.testing.assert_array_equal(load_image(PIXELS.astype(np.float32) / 255.0), PIXELS)
    with pytest.raises(InputError, match="shape"):
        load_image(np.zeros((80, 120, 2), np.uint8))
    with pytest.raises(InputError, match="int64"):
        load_image(np.zeros((80, 120, 3), np.int64))


def test_resize_max_keeps_aspect():
    image = np.zeros((300, 600, 3), np.uint8)
    assert resize_max(image, 200).shape == (100, 200, 3)
    assert resize_max(image, 1000) is image
    assert resize_max(image, None) is image


def test_example_portrait(portrait_path: Path):
    assert load_image(portrait_path).shape == (512, 512, 3)


def test_probe_image_reads_the_header_only(tmp_path):
    from PIL import Image

    from genhuman.media import probe_image

    path = tmp_path / "p.png"
    Image.new("RGB", (300, 200), (1, 2, 3)).save(path)
    assert probe_image(path) == (300, 200)
    with pytest.raises(InputError, match="too large"):
        probe_image(path, max_pixels=300 * 200 - 1)
    with pytest.raises(InputError, match="too small"):
        probe_image(path, min_side=201)
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(InputError, match="not an image"):
        probe_image(tmp_path / "junk.png")


def test_pixel_limit_from_the_environment(tmp_path, monkeypatch):
    from genhuman.media import probe_image

    path = tmp_path / "p.png"
    Image.new("RGB", (300, 200)).save(path)
    monkeypatch.setenv("GENHUMAN_MAX_IMAGE_PIXELS", str(300 * 200 - 1))
    with pytest.raises(InputError, match="too large \\(300x200\\); the limit is 59,999 pixels"):
        load_image(path)
    with pytest.raises(InputError, match="too large"):
        probe_image(path)
    assert load_image(path, max_pixels=300 * 200).shape == (200, 300, 3)  # the argument wins
    monkeypatch.setenv("GENHUMAN_MAX_IMAGE_PIXELS", "-5")
    with pytest.raises(InputError, match="^GENHUMAN_MAX_IMAGE_PIXELS must be a positive number, got '-5'$"):
        load_image(path)


def test_a_decode_larger_than_the_header_is_refused(tmp_path, monkeypatch):
    from PIL import PngImagePlugin

    path = tmp_path / "p.png"
    Image.new("RGB", (100, 100)).save(path)
    real_load = PngImagePlugin.PngImageFile.load

    def lying_load(self):  # a decoder that settles on a bigger size than the header's
        result = real_load(self)
        self._size = (1000, 1000)
        return result

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", lying_load)
    with pytest.raises(InputError, match="decodes to 1000x1000, larger than its header says; the limit is 20,000"):
        load_image(path, max_pixels=20_000)


def test_decoding_memory_is_bounded_by_the_pixels(tmp_path):
    # 12 Mpx RGBA: decoded by PIL (4 bytes/px) and returned as RGB (3 bytes/px); the old
    # whole-image conversions took ~25 bytes/px at the peak.
    import subprocess
    import sys

    path = tmp_path / "big.png"
    Image.new("RGBA", (4000, 3000), (10, 20, 30, 128)).save(path)
    code = ("import resource, sys; from genhuman.media import load_image; "
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; image = load_image(sys.argv[1]); "
            "print(image.shape, image[0, 0].tolist(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert done.stdout.startswith("(3000, 4000, 3) [132, 137, 142] "), done.stdout + done.stderr
    grown_kb = int(done.stdout.split()[-1])
    assert grown_kb * 1024 / 12e6 < 10.0  # bytes per pixel at the peak
