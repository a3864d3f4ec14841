"""Evaluation metrics used in the README tables behave as their definitions say."""
import torch
import torch.nn.functional as F

from train.eval_vae import vif_p


def test_vif_is_one_for_identical_images_and_drops_with_blur_and_noise(celebamask):
    from core.imageio import load_image

    x = torch.from_numpy(load_image(celebamask(9)[0]).copy()).permute(2, 0, 1)[None].float() / 255
    assert abs(vif_p(x, x).item() - 1) < 1e-6
    blur3 = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    blur9 = F.avg_pool2d(F.pad(x, (4, 4, 4, 4), mode="replicate"), 9, stride=1)
    noisy = (x + 0.05 * torch.randn_like(x, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    v3, v9, vn = vif_p(x, blur3).item(), vif_p(x, blur9).item(), vif_p(x, noisy).item()
    assert 1 > v3 > v9 > 0 and 0 < vn < 1
