"""Multi-stage VAE: coarse-to-fine face generation (Cai, Gao & Ji, seed 004).

Implements §2.3 / Fig. 3 and the CelebA settings of §3.1 of "Multi-Stage Variational Auto-Encoders for
Coarse-to-Fine Image Generation": an encoder of 4 layers (each a stride-1 conv then a stride-2 conv), a
512-d latent, a first decoder f_theta1 of 4 transposed convolutions producing the coarse image (trained
with the l2 / Gaussian likelihood term and KL, Eq. 12-14), and a second network f_theta2 of 5 residual
blocks (SRResNet-like) producing the refined image (trained with l1, Eq. 15). 128x128 RGB in [0, 1].

The paper gives no widths, normalisation or activations; chosen here: 4x4 stride-2 convs, BatchNorm,
LeakyReLU(0.2) in the encoder/decoder, residual blocks conv-BN-ReLU-conv-BN (as its MNIST section says)
with 64 channels, and a global skip so f_theta2 predicts a correction of the coarse image.
"""
from __future__ import annotations

import torch
from torch import nn

from core.models.common import ConfigModule


def enc_layer(cin: int, cout: int) -> nn.Sequential:
    """One encoder "layer" of §3.1: 3x3 stride-1 conv then 4x4 stride-2 conv (halves H, W)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2),
        nn.Conv2d(cout, cout, 4, stride=2, padding=1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))


class ResBlock(nn.Module):
    """x + BN(conv(ReLU(BN(conv(x))))): the residual block of the paper's refinement network."""

    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(ch, ch, 3, padding=1), nn.BatchNorm2d(ch), nn.ReLU(),
            nn.Conv2d(ch, ch, 3, padding=1), nn.BatchNorm2d(ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class MultiStageVAE(ConfigModule):
    """Two-stage VAE of seed 004: z -> coarse image (f_theta1) -> refined image (f_theta2)."""

    def __init__(self,
                 image_size: int = 128,   # input side in pixels (divisible by 16)
                 latent_dim: int = 512,   # size of z (the paper's CelebA setting)
                 widths: tuple[int, ...] | list[int] = (32, 64, 128, 128),  # channels after each encoder
                 # layer (len 4); the decoder mirrors them. The last one sets the bottleneck, S/16 x S/16 x
                 # widths[-1], flattened into the mu / logvar layers (128 keeps each under 16 MiB in fp16)
                 refine_ch: int = 64,     # channels of the refinement network f_theta2
                 n_res: int = 5,          # residual blocks in f_theta2 (the paper's 5)
                 ):
        widths = [int(c) for c in widths]
        super().__init__(image_size=image_size, latent_dim=latent_dim, widths=widths, refine_ch=refine_ch, n_res=n_res)
        if image_size % 16 or len(widths) != 4:
            raise ValueError("image_size must be divisible by 16 and widths must have 4 entries (4 stride-2 layers)")
        self.bottom = (widths[-1], image_size // 16, image_size // 16)  # [C, h, w] at the bottleneck
        flat = widths[-1] * (image_size // 16) ** 2
        layers, cin = [], 3
        for c in widths:
            layers.append(enc_layer(cin, c))
            cin = c
        self.encoder = nn.Sequential(*layers, nn.Flatten())
        self.to_mu = nn.Linear(flat, latent_dim)
        self.to_logvar = nn.Linear(flat, latent_dim)
        # f_theta1: dense seed + 4 transposed convs (the last one emits RGB)
        self.fc = nn.Sequential(nn.Linear(latent_dim, flat), nn.Unflatten(1, self.bottom))
        dec: list[nn.Module] = [nn.BatchNorm2d(widths[-1]), nn.LeakyReLU(0.2)]
        rev = widths[::-1]
        for cin, cout in zip(rev[:-1], rev[1:]):
            dec += [nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2)]
        dec.append(nn.ConvTranspose2d(rev[-1], 3, 4, stride=2, padding=1))
        self.coarse_decoder = nn.Sequential(*dec)
        # f_theta2: SRResNet-style refinement of the coarse image
        self.refine_head = nn.Sequential(nn.Conv2d(3, refine_ch, 3, padding=1), nn.PReLU(refine_ch))
        self.refine_body = nn.Sequential(*[ResBlock(refine_ch) for _ in range(n_res)],
                                         nn.Conv2d(refine_ch, refine_ch, 3, padding=1), nn.BatchNorm2d(refine_ch))
        self.refine_tail = nn.Conv2d(refine_ch, 3, 3, padding=1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [N, 3, S, S] in [0, 1] -> (mu, logvar), each [N, latent_dim]."""
        h = self.encoder(x)
        return self.to_mu(h), self.to_logvar(h).clamp(-30.0, 20.0)

    def refine(self, coarse: torch.Tensor) -> torch.Tensor:
        """f_theta2: coarse [N, 3, S, S] -> refined [N, 3, S, S] (coarse + predicted correction, unclamped)."""
        h = self.refine_head(coarse)
        return coarse + self.refine_tail(h + self.refine_body(h))

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z [N, latent_dim] -> (coarse, refined), each [N, 3, S, S], nominally [0, 1] (not clamped:
        the losses see the raw values; `reconstruct` and `sample` clamp)."""
        coarse = torch.sigmoid(self.coarse_decoder(self.fc(z)))
        return coarse, self.refine(coarse)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None):
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [N, 3, S, S] in [0, 1] -> (coarse, refined) in [0, 1], decoded from z = mu."""
        mu, _ = self.encode(x)
        coarse, refined = self.decode(mu)
        return coarse.clamp(0, 1), refined.clamp(0, 1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """n faces from the prior z ~ N(0, I): (coarse, refined), each [n, 3, S, S] in [0, 1]."""
        p = next(self.parameters())
        z = torch.randn(n, self.config["latent_dim"], generator=generator, device=p.device, dtype=p.dtype)
        coarse, refined = self.decode(z)
        return coarse.clamp(0, 1), refined.clamp(0, 1)
