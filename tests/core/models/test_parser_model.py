"""FaceParser (core/models/parser.py): shapes, save/load round trip, and label-correct augmentation."""
from __future__ import annotations

import numpy as np
import torch

from core.labels import FLIP_PERM, ID, NUM_CLASSES, OCCLUDER, flip_labels
from core.models.parser import FaceParser

TINY = dict(widths=(8, 8, 16, 16, 16), depths=(1, 1, 1, 1), dec_widths=(16, 8, 8, 8))


def test_forward_shape_dtype_and_predict():
    m = FaceParser(**TINY).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        y = m(x)
    assert y.shape == (2, NUM_CLASSES, 64, 64) and y.dtype == torch.float32
    labels = m.predict(x)
    assert labels.shape == (2, 64, 64) and labels.dtype == torch.int64
    assert torch.equal(labels, y.argmax(1))


def test_default_config_is_small():
    m = FaceParser()
    n = sum(p.numel() for p in m.parameters())
    assert 2e6 < n < 6e6  # fp16 checkpoint well under 16 MiB


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    m = FaceParser(**TINY)
    m.train()
    m(torch.rand(4, 3, 64, 64))  # move BN running stats off their defaults
    m.eval()
    files = m.save_pretrained(str(tmp_path), card="# card")
    assert "model.safetensors" in files and "config.json" in files
    m2 = FaceParser.from_pretrained(str(tmp_path))
    assert m2.config == m.config
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        a, b = m(x), m2(x)
    assert torch.allclose(a, b, atol=2e-2, rtol=1e-2)  # fp16 weights on disk


def _toy_batch(b=4, s=64):
    """A face-like label map: skin disc, eyes left/right, nose, hair band on top."""
    lab = torch.zeros(b, s, s, dtype=torch.long)
    yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    lab[:, ((yy - s // 2) ** 2 + (xx - s // 2) ** 2) < (s // 3) ** 2] = ID["skin"]
    lab[:, :s // 6] = ID["hair"]
    lab[:, s // 2 - 3:s // 2, s // 3:s // 3 + 5] = ID["right_eye"]   # image left = person's right
    lab[:, s // 2 - 3:s // 2, 2 * s // 3 - 5:2 * s // 3] = ID["left_eye"]
    lab[:, s // 2 + 2:s // 2 + 8, s // 2 - 2:s // 2 + 2] = ID["nose"]
    img = torch.rand(b, 3, s, s)
    return img, lab


def test_flip_swaps_left_right_classes():
    from train.parser import flip

    img, lab = _toy_batch()
    torch.manual_seed(0)
    fimg, flab = flip(img, lab, p=1.0)
    assert torch.equal(fimg, img.flip(-1))
    expect = torch.from_numpy(np.stack([flip_labels(l.numpy()) for l in lab]))
    assert torch.equal(flab, expect)
    # the eye on the image's left is still the person's right eye after the flip
    s = lab.shape[-1]
    assert (flab[0, :, : s // 2] == ID["right_eye"]).any() and not (flab[0, :, : s // 2] == ID["left_eye"]).any()
    assert FLIP_PERM[ID["left_brow"]] == ID["right_brow"]


def test_occluders_label_pasted_pixels_and_keep_the_rest():
    from train.occluders import OccluderBank, apply_occluders, lower_face_masks

    img, lab = _toy_batch(b=6)
    donors_img = (torch.rand(6, 3, 64, 64) * 255).to(torch.uint8)
    donors_lab = lab.clone().to(torch.uint8)
    donors_lab[:, 40:60, 10:50] = ID["cloth"]
    lm = torch.zeros(3, 68, 2)
    lm[:, 2:15, 0] = torch.linspace(12, 52, 13)
    lm[:, 2:15, 1] = 40 + 12 * torch.sin(torch.linspace(0, np.pi, 13))
    lm[:, 29] = torch.tensor([32.0, 30.0])
    masks, valid = lower_face_masks(lm, 64)
    assert valid.all() and masks[0, 45, 32] and not masks[0, 10, 32]
    bank = OccluderBank.build(donors_img, donors_lab, donors_img[:3], lm, min_pixels=50)
    g = torch.Generator().manual_seed(3)
    out_img, out_lab = apply_occluders(img, lab, bank, p=1.0, g=g)
    pasted = out_lab == OCCLUDER
    assert pasted.flatten(1).any(1).all()            # every sample got an occluder (p = 1)
    assert torch.equal(out_lab[~pasted], lab[~pasted])  # other labels untouched
    assert out_img.shape == img.shape and 0 <= out_img.min() and out_img.max() <= 1
    # deterministic with a seeded generator
    again = apply_occluders(img, lab, bank, p=1.0, g=torch.Generator().manual_seed(3))
    assert torch.equal(again[1], out_lab) and torch.allclose(again[0], out_img)


def test_scores_perfect_and_visible_face():
    from train.eval_parser import Scores

    _, lab = _toy_batch(b=2)
    s = Scores("cpu")
    s.update(lab, lab)
    out = s.summary()
    assert abs(out["miou"] - 1) < 1e-9 and abs(out["visible_iou"] - 1) < 1e-9
    occ = lab.clone()
    occ[:, 20:40, 20:40] = OCCLUDER
    s = Scores("cpu")
    s.update(lab, occ)   # prediction missed the occluder: visible face over-predicted
    assert s.summary()["visible_iou"] < 1
