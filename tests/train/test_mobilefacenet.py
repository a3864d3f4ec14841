"""The training-time identity loss (train/mobilefacenet.py): geometry, weights, behaviour on real faces."""
import os

import numpy as np
import pytest
import torch

from train import mobilefacenet as M


@pytest.fixture(scope="module")
def net():
    path = M.default_weights_path()
    if not os.path.isfile(path):
        pytest.skip(f"MobileFaceNet weights not found at {path} (set FACELAB_ARCFACE)")
    return M.load_mobilefacenet(path)  # strict=True inside


@pytest.fixture(scope="module")
def crops(identities):
    """6 identities x 3 real CelebA photos, aligned by core.face at 128 px -> (float [18, 3, 128, 128], ids)."""
    from core import face as F
    from core.imageio import load_image

    images, ids = [], []
    for name in list(identities)[::30][:6]:
        found = 0
        for path in identities[name]:
            img = load_image(path)
            faces = F.detect_faces(img, cnn_fallback=False)
            if faces:
                images.append(F.align_face(img, faces[0], 128).image)
                ids.append(name)
                found += 1
            if found == 3:
                break
        assert found == 3, name
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    return x, np.array(ids)


def test_warp_puts_mean_points_on_the_template():
    """Blobs drawn at MEAN_POINTS land where the fitted similarity sends them, at any crop size."""
    loss = M.IdentityLoss(net=M.MobileFaceNet())  # geometry only: random weights
    T = M.crop_to_template()
    expected = M.MEAN_POINTS @ T[:, :2].T + T[:, 2]
    assert np.abs(expected - M.TEMPLATE_112x96).max() < 3  # our crops are close to the template's framing
    for size in (128, 256):
        yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
        img = sum(torch.exp(-((xx - fx * size) ** 2 + (yy - fy * size) ** 2) / (2 * (size / 64) ** 2))
                  for fx, fy in M.MEAN_POINTS)
        out = (loss.warp(img.expand(1, 3, size, size))[0, 0] * 128 + 127.5) / 255  # [112, 96]
        Y, X = torch.meshgrid(torch.arange(112).float(), torch.arange(96).float(), indexing="ij")
        for ex, ey in expected:
            w = out * (((X - ex) ** 2 + (Y - ey) ** 2) < 64)
            cx, cy = float((w * X).sum() / w.sum()), float((w * Y).sum() / w.sum())
            assert abs(cx - ex) < 0.3 and abs(cy - ey) < 0.3, (size, ex, ey, cx, cy)


def test_weights_load_strict_and_frozen(net):
    assert not any(p.requires_grad for p in net.parameters()) and not net.training
    assert net(torch.zeros(2, 3, 112, 96)).shape == (2, M.EMBED_DIM)
    loss = M.IdentityLoss(net).train()
    assert not loss.net.training  # a parent's .train() must not unfreeze BatchNorm


def test_same_identity_is_closer(net, crops):
    x, ids = crops
    loss = M.IdentityLoss(net)
    with torch.no_grad():
        e = loss.embed(x)
    assert e.shape == (len(ids), 256) and torch.allclose(e.norm(dim=1), torch.ones(len(ids)), atol=1e-4)
    cos = (e @ e.T).numpy()
    same = ids[:, None] == ids[None, :]
    off = ~np.eye(len(ids), dtype=bool)
    cos_same, cos_diff = cos[same & off].mean(), cos[~same].mean()
    assert cos_same - cos_diff > 0.3, (cos_same, cos_diff)
    # each face's nearest other face is mostly the same person
    nearest = np.where(off, cos, -2).argmax(1)
    assert (ids[nearest] == ids).mean() >= 0.8


def test_loss_is_differentiable(net, crops):
    x, _ = crops
    loss = M.IdentityLoss(net)
    first, second = x[0:6:3], x[1:7:3]                # two people; another photo of each
    with torch.no_grad():
        e1, e2 = loss.embed(first), loss.embed(second)
        assert float(loss(first, e1).abs().max()) < 1e-5  # same image: zero loss
    a = first.clone().requires_grad_(True)
    value = loss(a, e2)                                   # precomputed target descriptors
    assert value.shape == (2,) and torch.allclose(value.detach(), 1 - (e1 * e2).sum(1), atol=1e-5)
    assert bool((value > 0).all())
    value.sum().backward()
    assert a.grad is not None and torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0
