"""Bad input gets a clear message; odd but valid images load as RGB uint8."""
import io

import numpy as np
import pytest
from PIL import Image

from core.errors import InvalidImage
from core.imageio import load_image


def _save(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_not_an_image(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("this is not a photo")
    with pytest.raises(InvalidImage, match="Not an image"):
        load_image(str(p))


def test_truncated_file(celebamask):
    data = open(celebamask(0)[0], "rb").read()
    with pytest.raises(InvalidImage, match="damaged or truncated"):
        load_image(data[: len(data) // 2])


def test_tiny_image():
    with pytest.raises(InvalidImage, match="too small"):
        load_image(_save(Image.new("RGB", (1, 1)), "PNG"))


def test_decompression_bomb():
    bomb = _save(Image.new("1", (20000, 20000)), "PNG")  # 400 MP, a few kB on disk
    with pytest.raises(InvalidImage, match="too large"):
        load_image(bomb)


def test_modes_become_rgb(astronaut):
    rgb = Image.fromarray(astronaut)
    for im in (rgb.convert("L"), rgb.convert("RGBA"), rgb.convert("CMYK"), rgb.convert("P")):
        fmt = "JPEG" if im.mode == "CMYK" else "PNG"
        out = load_image(_save(im, fmt))
        assert out.shape == (512, 512, 3) and out.dtype == np.uint8, im.mode
    # CMYK JPEG must keep the colours close to the original
    out = load_image(_save(rgb.convert("CMYK"), "JPEG", quality=95))
    assert np.abs(out.astype(int) - astronaut).mean() < 12


def test_16bit_png(astronaut):
    gray16 = (np.asarray(Image.fromarray(astronaut).convert("L"), np.uint16) * 257)
    out = load_image(_save(Image.fromarray(gray16), "PNG"))
    ref = np.asarray(Image.fromarray(astronaut).convert("L"))
    assert out.shape == (512, 512, 3) and np.abs(out[:, :, 0].astype(int) - ref).max() <= 1


def test_exif_orientation_is_honoured(astronaut):
    # stored rotated 90 degrees clockwise with orientation 8 (rotate 90 CW to display)... 
    stored = Image.fromarray(astronaut).transpose(Image.Transpose.ROTATE_90)  # counter-clockwise
    exif = Image.Exif()
    exif[0x0112] = 6  # display = rotate 90 clockwise
    out = load_image(_save(stored, "JPEG", quality=95, exif=exif.tobytes()))
    assert out.shape == astronaut.shape
    assert np.abs(out.astype(int) - astronaut).mean() < 6


def test_rgba_array_and_float():
    a = np.zeros((64, 64, 4), np.uint8)
    a[..., 1] = 255
    a[..., 3] = 255
    assert (load_image(a)[..., 1] == 255).all()
    assert load_image(np.ones((64, 64), np.float32)).max() == 255
