"""Tiny-config checks of core/models/stylegan.py on CPU: shapes, w+ layout, modulation, mixing, save/load."""
import os

import pytest
import torch

from core.models.stylegan import StyleGAN2Discriminator, StyleGAN2Generator, sample_z

TINY = dict(img_resolution=32, channel_base=256, channel_max=16, mapping_layers=2, z_dim=32, w_dim=32)


@pytest.fixture
def G():
    torch.manual_seed(0)
    g = StyleGAN2Generator(**TINY).eval()
    with torch.no_grad():  # non-zero noise strengths so noise handling is observable
        for m in g.modules():
            if hasattr(m, "noise_strength"):
                m.noise_strength.normal_(0, 0.5)
    return g


def test_shapes_and_num_ws(G):
    assert G.num_ws == 2 * 5 - 2  # 32 px: 4, 8, 16, 32
    ws = G.mapping(torch.randn(3, 32))
    assert ws.shape == (3, G.num_ws, 32)
    img = G.synthesis(ws, noise_mode="random")
    assert img.shape == (3, 3, 32, 32) and torch.isfinite(img).all()
    assert G(torch.randn(2, 32)).shape == (2, 3, 32, 32)
    D = StyleGAN2Discriminator(img_resolution=32, channel_base=256, channel_max=16)
    assert D(img).shape == (3,)
    assert len(G.synthesis_network.noise_channels) == G.num_ws - 1


def test_ws_index_at_128():
    G = StyleGAN2Generator(channel_base=256, channel_max=8, mapping_layers=1)
    assert G.num_ws == 12
    assert G.synthesis_network.ws_index == {4: [0, 1], 8: [1, 2, 3], 16: [3, 4, 5], 32: [5, 6, 7],
                                            64: [7, 8, 9], 128: [9, 10, 11]}
    with pytest.raises(AssertionError):
        G.synthesis(torch.zeros(1, 11, 512))


def test_fused_modconv_matches(G):
    ws = G.mapping(torch.randn(2, 32)) + 0.3 * torch.randn(2, G.num_ws, 32)  # distinct w per layer
    a = G.synthesis(ws, noise_mode="const")
    b = G.synthesis(ws, noise_mode="const", fused_modconv=True)
    assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def test_noise_modes_and_overrides(G):
    ws = G.mapping(torch.randn(2, 32))
    c1, c2 = G.synthesis(ws, "const"), G.synthesis(ws, "const")
    assert torch.equal(c1, c2)
    assert not torch.allclose(G.synthesis(ws, "random"), G.synthesis(ws, "random"))
    none = G.synthesis(ws, "none")
    assert not torch.allclose(none, c1)
    zeros = [torch.zeros(2, c) for c in G.synthesis_network.noise_channels]
    assert torch.allclose(G.synthesis(ws, "random", noise_strengths=zeros), none, atol=1e-6)
    const = G.synthesis_network.blocks[0].const[None].expand(2, -1, -1, -1)
    assert torch.allclose(G.synthesis(ws, "const", const=const), c1, atol=1e-6)
    assert not torch.allclose(G.synthesis(ws, "const", const=torch.randn_like(const)), c1)
    with pytest.raises(ValueError):
        G.synthesis(ws, "bogus")


def test_style_mixing(G):
    z = torch.randn(64, 32)
    ws1, ws2 = G.mapping(z[:32]), G.mapping(z[32:])
    mixed = G.mix_styles(ws1, ws2, prob=1.0)
    for i in range(32):
        from2 = (mixed[i] == ws2[i]).all(1)  # [num_ws]
        cut = int((~from2).sum())
        assert 1 <= cut < G.num_ws
        assert torch.equal(mixed[i, :cut], ws1[i, :cut]) and torch.equal(mixed[i, cut:], ws2[i, cut:])
    assert torch.equal(G.mix_styles(ws1, ws2, prob=0.0), ws1)
    # coarse layers from ws1, fine from ws2: a different image from both sources
    cut = 2
    ws = torch.cat([ws1[:1, :cut], ws2[:1, cut:]], 1)
    img = G.synthesis(ws)
    assert not torch.allclose(img, G.synthesis(ws1[:1])) and not torch.allclose(img, G.synthesis(ws2[:1]))


def test_truncation_and_w_avg(G):
    G.train()
    z = torch.randn(16, 32)
    before = G.w_avg.clone()
    ws = G.mapping(z, update_w_avg=True)
    assert not torch.equal(G.w_avg, before)
    expected = ws[:, 0].mean(0).lerp(before, G.w_avg_beta)
    assert torch.allclose(G.w_avg, expected, atol=1e-6)
    G.eval()
    ws0 = G.mapping(z, truncation_psi=0.0)
    assert torch.allclose(ws0, G.w_avg.expand_as(ws0), atol=1e-6)
    half = G.mapping(z, truncation_psi=0.5, truncation_cutoff=4)
    assert torch.allclose(half[:, :4], G.w_avg.lerp(ws[:, :4], 0.5), atol=1e-5)
    assert torch.allclose(half[:, 4:], ws[:, 4:], atol=1e-6)


def test_save_load_round_trip(G, tmp_path):
    files = G.save_pretrained(str(tmp_path), card="# test")
    assert "config.json" in files and "README.md" in files
    G2 = StyleGAN2Generator.from_pretrained(str(tmp_path))
    assert G2.config == G.config and G2.num_ws == G.num_ws
    assert torch.equal(G2.w_avg, G.w_avg.half().float())
    z = sample_z([0, 1])  # z_dim 512: take the first 32 dims
    z = z[:, :32]
    a, b = G(z, truncation_psi=0.7), G2(z, truncation_psi=0.7)
    assert (a - b).abs().max() < 0.05  # fp16 weights
    assert torch.equal(G2(z), G2(z))  # const noise reloaded


def test_default_size_and_files(tmp_path):
    G = StyleGAN2Generator()
    n = sum(p.numel() for p in G.parameters())
    assert 8e6 < n < 12e6
    files = G.save_pretrained(str(tmp_path))
    sizes = [os.path.getsize(tmp_path / f) for f in files]
    assert max(sizes) < 16 * 1024 * 1024
    assert sum(sizes) < 24 * 1024 * 1024


def test_sample_z_is_deterministic():
    assert torch.equal(sample_z([3, 4]), sample_z([3, 4]))
    assert sample_z([3]).shape == (1, 512)


def test_resampling_is_centred_and_blur_impls_agree():
    """Up/down-sampling keeps an impulse centred and isotropic (a one-pixel shift per layer would smear features),
    and the 'conv' / 'pool' blur implementations give the same numbers forward and backward."""
    from core.models.stylegan import EqualConv2d, ModulatedConv2d, _binomial_filter, _blur, set_blur_impl

    up = ModulatedConv2d(1, 1, 3, 8, demodulate=False, up=True)
    with torch.no_grad():
        up.weight.zero_()
        up.weight[0, 0, 1, 1] = 3.0  # centre tap, times 1 / w_gain
        up.affine.weight.zero_()  # style s = bias = 1
        imp = torch.zeros(1, 1, 4, 4)
        imp[0, 0, 1, 1] = 1.0
        y = up(imp, torch.zeros(1, 8))[0, 0]  # low-res pixel 1 is centred at high-res 2.5
    idx = torch.arange(8.0)
    assert torch.allclose(y, y.t()) and abs(y.sum().item() - 4.0) < 1e-5
    assert abs(((idx[:, None] * y).sum() / y.sum()).item() - 2.5) < 1e-5
    for k in (1, 3):
        down = EqualConv2d(1, 1, k, bias=False, activation=False, down=True)
        with torch.no_grad():
            down.weight.zero_()
            down.weight[0, 0, k // 2, k // 2] = 1.0 / down.w_gain
            block = torch.zeros(1, 1, 8, 8)
            block[0, 0, 2:4, 2:4] = 1.0  # centred at high-res 2.5 -> low-res pixel 1
            d = down(block)[0, 0]
        assert torch.allclose(d, d.t())
        assert abs(((torch.arange(4.0)[:, None] * d).sum() / d.sum()).item() - 1.0) < 1e-5
    f = _binomial_filter()
    try:
        for pad, stride in ((1, 1), (2, 1), (1, 2)):
            x = torch.randn(2, 3, 10, 10, requires_grad=True)
            outs = []
            for impl in ("conv", "pool"):
                set_blur_impl(impl)
                o = _blur(x, f, pad, stride)
                outs.append((o, torch.autograd.grad((o * torch.linspace(-1, 1, o.numel()).view_as(o)).sum(), x)[0]))
            assert torch.allclose(outs[0][0], outs[1][0], atol=1e-6) and torch.allclose(outs[0][1], outs[1][1], atol=1e-6)
    finally:
        set_blur_impl("conv")


def test_noise_maps_are_full_2d():
    """Per-layer noise is a full [R, R] map broadcast as [1|N, 1, R, R] (a [R]- or [R,1]-shaped map would draw stripes)."""
    G = StyleGAN2Generator(**TINY)
    for block in G.synthesis_network.blocks:
        for layer in block.convs:
            assert layer.noise_const.shape == (block.resolution, block.resolution)
            assert layer.noise_const.std(0).min() > 0.1 and layer.noise_const.std(1).min() > 0.1
