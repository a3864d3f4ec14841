"""Pose editor (core/models/pose.py): landmark geometry, landmark maps, identity warp, save/load (tiny, CPU)."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from core.models.pose import (FLIP68, NUM_REGIONS, REGIONS, PixelAttentionSampler, PoseInpainter,
                              ProjectionDiscriminator, canonical_align, edit_pose, fit_template, flip_landmarks,
                              mean_face_3d, preprocess, region_maps, rotate_landmarks, rotation_matrix,
                              target_landmarks)

TINY_S = dict(image_size=64, widths=(8, 8, 16, 16), blocks=1, cond_dim=16, flow_res=32)
TINY_G = dict(image_size=64, widths=(8, 8, 16, 16), blocks=1, cond_dim=16, id_dim=16, id_width=4, distill_dim=8)


def face_landmarks(yaw: float = 0.0, pitch: float = 0.0, size: int = 128) -> torch.Tensor:
    """2D landmarks [1, 68, 2] of the mean face seen at (yaw, pitch), framed like an aligned crop."""
    r = rotation_matrix(torch.tensor([yaw]), torch.tensor([pitch]))
    pts = mean_face_3d() @ r.transpose(1, 2)
    lm, _ = canonical_align(pts[..., :2], size)
    return lm


def test_rotation_matches_front_end():
    face = pytest.importorskip("core.face")
    from core.models import pose

    for y, p, r in ((30, 10, 5), (-20, -15, 3), (0, 40, -8)):
        ours = rotation_matrix(torch.tensor([float(y)]), torch.tensor([float(p)]), torch.tensor([float(r)]))[0]
        assert np.allclose(ours.numpy(), face.rotation_matrix(y, p, r), atol=1e-6)
    assert (pose.CENTER_X, pose.CENTER_Y, pose.SCALE) == (face.CENTER_X, face.CENTER_Y, face.SCALE)
    lm = face_landmarks(12, -5)[0].double().numpy() * 3 + 40  # some photo frame
    ours = pose.align_matrix(torch.from_numpy(lm)[None], 256)[0].numpy()
    assert np.allclose(ours, face.align_matrix(lm, 256), atol=1e-6)


def test_fit_and_zero_rotation_returns_input():
    lm = face_landmarks(20, -10) + torch.randn(1, 68, 2) * 0.8   # a non-template face
    lm3d, pose = fit_template(lm, torch.tensor([20.0]), torch.tensor([-10.0]))
    assert torch.equal(lm3d[..., :2], lm)
    assert abs(float(pose[0, 2])) < 3                              # template seen upright: ~0 roll
    nose, ear = lm3d[0, 30, 2], lm3d[0, 0, 2]
    assert nose > ear                                              # z towards the viewer: nose in front
    back = rotate_landmarks(lm3d, pose, pose)
    assert torch.allclose(back, lm3d, atol=1e-3)
    same, m = target_landmarks(lm3d, pose, pose[:, 0], pose[:, 1], 128)
    assert torch.allclose(same[..., :2], canonical_align(lm, 128)[0], atol=1e-3)


@pytest.mark.parametrize("realign", [True, False])
def test_yaw_and_pitch_directions(realign):
    """core.face: yaw > 0 = face turned to the image's right; pitch > 0 = looking up."""
    lm = face_landmarks()
    lm3d, pose = fit_template(lm, torch.zeros(1), torch.zeros(1))

    def nose_offset(l):  # nose tip relative to the eye centres, pixels
        l = l[0, :, :2]
        return l[30] - (l[36:42].mean(0) + l[42:48].mean(0)) / 2

    before = nose_offset(lm3d)
    right, _ = target_landmarks(lm3d, pose, torch.tensor([30.0]), torch.tensor([0.0]), 128, realign=realign)
    left, _ = target_landmarks(lm3d, pose, torch.tensor([-30.0]), torch.tensor([0.0]), 128, realign=realign)
    up, _ = target_landmarks(lm3d, pose, torch.tensor([0.0]), torch.tensor([20.0]), 128, realign=realign)
    assert nose_offset(right)[0] > before[0] + 5
    assert nose_offset(left)[0] < before[0] - 5
    assert nose_offset(up)[1] < before[1] - 2
    # the rotated face agrees with the mean face rendered at that pose (same template, weak perspective)
    ref = face_landmarks(30.0, 0.0)
    if realign:
        assert (right[..., :2] - ref).norm(dim=-1).mean() < 0.5


def test_region_maps_and_flip():
    lm = face_landmarks(15, 5)
    maps = region_maps(lm, 128)
    assert maps.shape == (1, NUM_REGIONS, 128, 128)
    assert maps.min() >= 0 and maps.sum(1).max() <= 1 + 1e-5
    x, y = lm[0, 30].round().long().tolist()                        # nose tip pixel
    assert maps[0, REGIONS.index("nose"), y, x] > 0.5
    x, y = lm[0, 36:42].mean(0).round().long().tolist()             # centre of the image-left eye
    assert maps[0, REGIONS.index("eye_l"), y, x] > 0.5
    assert sorted(FLIP68) == list(range(68))
    flipped = region_maps(flip_landmarks(lm, 128), 128)
    swap = [REGIONS.index(n.replace("_l", "_X").replace("_r", "_l").replace("_X", "_r")) for n in REGIONS]
    expect = maps.flip(-1)[:, swap]
    assert (flipped - expect).abs().mean() < 0.01


def test_preprocess_identity_and_side():
    lm = face_landmarks(25)
    img = torch.rand(1, 3, 128, 128)
    pre = preprocess(img, lm, lm)
    assert torch.allclose(pre["matrix"], torch.eye(2, 3)[None], atol=1e-4)
    assert (pre["aligned"] - img).abs().max() < 1e-3
    # turned to the image right: the image-left half (dlib 0-8, 36-41) is the exposed one
    assert int(preprocess(img, lm, face_landmarks(30))["side"]) == 0
    assert int(preprocess(img, face_landmarks(-25), face_landmarks(-30))["side"]) == 1


def tiny_models():
    torch.manual_seed(0)
    return PixelAttentionSampler(**TINY_S).eval(), PoseInpainter(**TINY_G).eval()


def test_identity_flow_warp_returns_input():
    s, _ = tiny_models()
    lm = face_landmarks(size=64)
    lm3d, _ = fit_template(lm, torch.zeros(1), torch.zeros(1))
    img = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        out = s(img, lm, lm3d, with_maps=True)     # untrained head: zero offsets; target = own landmarks
    assert out["warped"].shape == (1, 3, 64, 64) and out["grid"].shape == (1, 64, 64, 2)
    assert (out["warped"] - img).abs().max() < 1e-4
    assert out["mask"].shape == (1, 1, 64, 64) and out["mask"].min() > 0.8
    assert (out["warped_maps"] - region_maps(lm, 64)).abs().max() < 1e-3
    # another target: zero offsets = exactly the half-face aligned input
    tgt3, _ = fit_template(face_landmarks(20, size=64), torch.tensor([20.0]), torch.zeros(1))
    with torch.no_grad():
        out = s(img, lm, tgt3)
    assert out["warped_maps"] is None
    assert (out["warped"] - out["aligned"]).abs().max() < 1e-4


def test_models_shapes_and_round_trip(tmp_path):
    s, g = tiny_models()
    lm = torch.cat([face_landmarks(size=64), face_landmarks(-15, size=64)])
    lm3d, _ = fit_template(lm, torch.tensor([0.0, -15.0]), torch.zeros(2))
    img = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        a = edit_pose(s, g, img, lm, lm3d.flip(0))
        s.save_pretrained(str(tmp_path / "s"))
        g.save_pretrained(str(tmp_path / "g"), card="# test")
        s2 = PixelAttentionSampler.from_pretrained(str(tmp_path / "s"))
        g2 = PoseInpainter.from_pretrained(str(tmp_path / "g"))
        b = edit_pose(s2, g2, img, lm, lm3d.flip(0))
        c = edit_pose(None, g2, img, lm, lm3d.flip(0))            # the no-sampler ablation path
    assert a["output"].shape == (2, 3, 64, 64) and 0 <= float(a["output"].min()) and float(a["output"].max()) <= 1
    assert (a["output"] - b["output"]).abs().max() < 2e-2          # fp16 weights
    assert c["output"].shape == (2, 3, 64, 64)
    assert os.path.exists(tmp_path / "g" / "README.md")
    d = ProjectionDiscriminator(64, width=8, layers=4)
    score, patch, feats = d(a["output"], lm3d)
    assert score.shape == (2,) and patch.shape[0] == 2 and len(feats) == 4


def test_default_models_fit_one_file():
    for cls in (PixelAttentionSampler, PoseInpainter):
        n = sum(p.numel() for p in cls().parameters())
        assert n * 2 < 15 * 1024 * 1024, (cls.__name__, n)        # fp16, one safetensors file under 16 MiB
