"""`python -m cli analyze|align` as documented."""
import json

import numpy as np
from PIL import Image

from cli import main


def test_analyze_json(celebamask, tmp_path, capsys):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    assert main(["analyze", celebamask(7)[0], str(bad), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    good, err = lines
    assert good["width"] == good["height"] == 256 and len(good["faces"]) == 1
    f = good["faces"][0]
    assert len(f["landmarks68"]) == 68 and len(f["embedding"]) == 128 and len(f["bbox"]) == 4
    assert all(k in f for k in ("score", "yaw", "pitch", "roll"))
    assert "error" in err and "faces" not in err


def test_analyze_exit_status_when_nothing_read(tmp_path, capsys):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"")
    assert main(["analyze", str(bad), "--json"]) == 1


def test_align_writes_crop(celebamask, tmp_path):
    out = tmp_path / "crop.png"
    assert main(["align", celebamask(11)[0], "--out", str(out), "--size", "128"]) == 0
    crop = np.asarray(Image.open(out))
    assert crop.shape == (128, 128, 3)
    # the crop of a CelebAMask-HQ image is the image itself, downscaled
    ref = np.asarray(Image.open(celebamask(11)[0]).resize((128, 128), Image.BILINEAR)).astype(int)
    assert np.abs(crop.astype(int) - ref).mean() < 20


def test_align_no_face_is_one_clear_line(tmp_path, capsys):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 200), (120, 120, 120)).save(blank)
    assert main(["align", str(blank), "--out", str(tmp_path / "o.png")]) == 2
    assert "No face" in capsys.readouterr().err
