"""Training-side helpers added for the rare attributes and the de-occlusion prior (no GPU, no shards needed)."""
from __future__ import annotations

import json

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from train import directions as D
from train.shards import ATTR_NAMES
from train.stylegan import has_eyeglasses


def test_rare_attribute_fit_uses_its_prevalence():
    """A rare binary attribute (1% positives) whose logit is noise from another direction everywhere else: the
    'top 30%' fit finds the noise direction, the prevalence fit finds the attribute's."""
    g = torch.Generator().manual_seed(0)
    n, d = 20000, 32
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    true, other = torch.zeros(d, dtype=torch.float64), torch.zeros(d, dtype=torch.float64)
    true[0], other[1] = 1.0, 1.0
    s = x @ true
    rare = s > torch.quantile(s, 0.99)
    raw = torch.where(rare, 6.0 + 0.1 * torch.randn(n, generator=g, dtype=torch.float64), x @ other)
    perm = torch.randperm(n, generator=g)
    test, train = perm[:2000], perm[2000:]
    n_top30, _ = D.fit_direction(x, raw, True, 0.3, train, test)
    n_prev, info = D.fit_direction(x, raw, True, 0.3, train, test, positive=0.01)
    assert float(n_prev @ true) > 0.9, float(n_prev @ true)
    assert float(n_prev @ true) > float(n_top30 @ true) + 0.3
    assert info["heldout_auc"] > 0.85 and "top 1.0%" in info["fit"]


def test_drop_weak_optional_keeps_required_sliders(tmp_path):
    names = ["age", "gender", "hat", "beard"]
    save_file({k: torch.ones(4) / 2 for k in names}, str(tmp_path / "directions.safetensors"))
    own = {"age": 0.01, "gender": 0.2, "hat": 0.004, "beard": 0.08}   # age is required: kept even though weak
    meta = {"sliders": {k: {"std": 1.0, "layers": [0, 3]} for k in names},
            "metrics_summary": {k: {"own_z": v} for k, v in own.items()}}
    (tmp_path / "directions.json").write_text(json.dumps(meta))
    assert D.drop_weak_optional(str(tmp_path)) == {"hat": 0.004}
    out = json.loads((tmp_path / "directions.json").read_text())
    assert list(out["sliders"]) == ["age", "gender", "beard"] and out["dropped_weak"] == {"hat": 0.004}
    assert set(load_file(str(tmp_path / "directions.safetensors"))) == {"age", "gender", "beard"}
    assert D.drop_weak_optional(str(tmp_path)) == {}                    # idempotent


def test_has_eyeglasses_from_parser_labels_or_celeba_attributes():
    labels = np.zeros((3, 64, 64), np.uint8)
    labels[1, 20:30, 10:50] = 3            # 400 eyeglasses pixels = 9.8% of the crop
    labels[2, 0, 0:10] = 3                 # 10 px = 0.24%: below the 0.4% rule
    assert has_eyeglasses({"split": np.zeros(3), "labels": labels}).tolist() == [False, True, False]
    attrs = np.full((2, 40), -1, np.int8)
    attrs[1, ATTR_NAMES.index("Eyeglasses")] = 1
    assert has_eyeglasses({"split": np.zeros(2), "attrs": attrs}).tolist() == [False, True]
    assert not has_eyeglasses({"split": np.zeros(2)}).any()


def test_mean_gradient_direction_moves_its_head_more_than_a_random_one():
    """train.directions --gradient: the mean gradient of a head over w+ is the direction along which the head's
    output rises fastest; a small step along it raises the head more than a step along a random unit vector."""
    from core.models.attributes import AttributeNet
    from core.models.stylegan import StyleGAN2Generator

    torch.manual_seed(0)
    G = StyleGAN2Generator(channel_base=256, channel_max=16, mapping_layers=2).eval()
    net = AttributeNet(widths=[8, 8, 16, 16], blocks=1).eval()
    grads = D.mean_gradients(G, net, ["age"], n=16, psi=1.0, batch=8, seed=0, dev=torch.device("cpu"))
    assert grads["age"].shape == (G.num_ws, G.w_dim) and torch.isfinite(grads["age"]).all()
    n = grads["age"].sum(0).float()
    n = n / n.norm()
    with torch.no_grad():
        w = G.mapping(torch.randn(16, G.z_dim, generator=torch.Generator().manual_seed(1)))

        def age_after(step: torch.Tensor) -> float:
            img = G.synthesis(w + 0.05 * step, noise_mode="const").clamp(-1, 1)
            return float(net.forward_raw(img)[:, 0].mean())

        base = age_after(torch.zeros_like(n))
        rnd = torch.nn.functional.normalize(torch.randn(G.w_dim, generator=torch.Generator().manual_seed(2)), dim=0)
        assert age_after(n) - base > 0
        assert age_after(n) - base > abs(age_after(rnd) - base)


def test_condition_is_orthogonal_to_boundaries_and_extra_gradients():
    """Conditional projection (InterFaceGAN sec. 2.3) with `--condition-gradients`: the slider's direction loses its
    components along the other heads' boundaries and along the extra (gradient) vectors, and stays a unit vector."""
    g = torch.Generator().manual_seed(0)
    normals = {k: torch.nn.functional.normalize(torch.randn(16, generator=g, dtype=torch.float64), dim=0)
               for k in ("eyeglasses", "gender", "pitch")}
    extra = [torch.randn(16, generator=g, dtype=torch.float64) for _ in range(2)]
    n = D.condition(normals, "eyeglasses", ["gender", "pitch"], extra)
    assert abs(float(n.norm()) - 1) < 1e-9
    for v in [normals["gender"], normals["pitch"], *extra]:
        assert abs(float(n @ v)) < 1e-9
    assert float(n @ normals["eyeglasses"]) > 0.5            # still mostly the slider's own direction
