"""Masked VAE: face reconstruction with a VAE and a predicted face mask (Toledo & Antonelo, seed 000).

Follows §3.1 / Fig. 1 of "Face Reconstruction with Variational Autoencoder and Face Masks" and the
authors' Keras code (tldrafael/FaceReconstructionWithVAEAndFaceMasks, `training.py`):

- encoder: conv blocks (3x3 conv -> BatchNorm -> ELU) of 2x32, 2x64, 2x128, 2x256, 1x256, 1x256, 1x512
  filters (the paper's "4x256"), each group followed by a 2x2 max-pool (valid: 144 -> 72 -> 36 -> 18
  -> 9 -> 4 -> 2 -> 1), flattened to 512, Dense(512)+ELU, then Dense heads for mu and log-variance;
- image decoder: 7x [ConvTranspose 3x3 s2 -> BN -> ELU, conv block] with 256, 256, 256, 128, 64, 32, 32
  channels (1 -> 2 -> 4 -> 9 -> 18 -> 36 -> 72 -> 144), final 3x3 conv -> 3 channels, sigmoid;
- mask decoder: the same layout with 32 channels everywhere, final 3x3 conv -> 1 logit.

Training puts the input background back with the ground-truth mask (out = m * x_hat + (1 - m) * x),
inference with the predicted mask (`compose`). Images are RGB in [0, 1] everywhere (the paper scales /255).

Deliberate differences from the Keras code: the log-variance head is used as a real log-variance
(z = mu + exp(logvar / 2) * eps); the authors' code multiplies eps by the "logvar" output directly.
`with_mask=False` builds the paper's no-mask hypotheses (H2, H4, H6, H8, H10): no mask decoder.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from core.models.common import ConfigModule

# (filters, number of conv blocks) per encoder stage; each stage ends with a 2x2 max-pool
ENCODER_STAGES = ((32, 2), (64, 2), (128, 2), (256, 2), (256, 1), (256, 1), (512, 1))
# output channels and transposed-conv padding ("valid" = 0 turns 4 into 9) per decoder stage
DECODER_STAGES = ((256, 1), (256, 1), (256, 0), (128, 1), (64, 1), (32, 1), (32, 1))


def conv_block(cin: int, cout: int) -> nn.Sequential:
    """3x3 conv -> BatchNorm -> ELU (the paper's conv block), spatial size kept."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ELU())


def up_block(cin: int, cout: int, padding: int) -> nn.Sequential:
    """ConvTranspose 3x3 stride 2 -> BN -> ELU -> conv block: n -> 2n (padding 1) or 2n + 1 (padding 0)."""
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=padding, output_padding=padding),
        nn.BatchNorm2d(cout), nn.ELU(), conv_block(cout, cout))


class Decoder(nn.Sequential):
    """z [N, latent] -> [N, out_ch, 144, 144] pre-activation (1x1 seed, 7 up-blocks, 3x3 conv head)."""

    def __init__(self, latent_dim: int, widths: tuple[int, ...], out_ch: int):
        layers: list[nn.Module] = [nn.Unflatten(1, (latent_dim, 1, 1))]
        cin = latent_dim
        for width, (_, pad) in zip(widths, DECODER_STAGES):
            layers.append(up_block(cin, width, pad))
            cin = width
        layers.append(nn.Conv2d(cin, out_ch, 3, padding=1))
        super().__init__(*layers)


class MaskedVAEOutput(NamedTuple):
    image: torch.Tensor   # [N, 3, H, W] in [0, 1]: decoder face composited on the input background
    raw: torch.Tensor     # [N, 3, H, W] in [0, 1]: decoder output before compositing
    mask: torch.Tensor | None  # [N, 1, H, W] face probability, None without a mask decoder


class MaskedVAE(ConfigModule):
    """VAE with an image decoder and a face-mask decoder (seed 000, Fig. 1), 144x144 RGB in [0, 1]."""

    def __init__(self,
                 image_size: int = 144,   # input side in pixels; the layout needs exactly 144
                 latent_dim: int = 512,   # size of z (the paper's 1x1x512 bottleneck)
                 with_mask: bool = True,  # build the mask decoder (False = the paper's no-mask hypotheses)
                 width_mult: float = 1.0,  # scales every conv width (1.0 = the paper's 9.3M parameters)
                 ):
        super().__init__(image_size=image_size, latent_dim=latent_dim, with_mask=with_mask, width_mult=width_mult)
        if image_size != 144:
            raise ValueError("the seed-000 layout (7 valid max-pools to 1x1) needs image_size=144")
        w = lambda c: max(4, int(round(c * width_mult)))  # noqa: E731
        layers: list[nn.Module] = []
        cin = 3
        for filters, n in ENCODER_STAGES:
            for _ in range(n):
                layers.append(conv_block(cin, w(filters)))
                cin = w(filters)
            layers.append(nn.MaxPool2d(2))
        self.encoder = nn.Sequential(*layers, nn.Flatten(), nn.Linear(cin, latent_dim), nn.ELU())
        self.to_mu = nn.Linear(latent_dim, latent_dim)
        self.to_logvar = nn.Linear(latent_dim, latent_dim)
        self.decoder = Decoder(latent_dim, tuple(w(c) for c, _ in DECODER_STAGES), 3)
        self.mask_decoder = Decoder(latent_dim, (w(32),) * len(DECODER_STAGES), 1) if with_mask else None

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [N, 3, 144, 144] in [0, 1] -> (mu, logvar), each [N, latent_dim]."""
        h = self.encoder(x)
        return self.to_mu(h), self.to_logvar(h).clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """z [N, latent_dim] -> (image [N, 3, 144, 144] in [0, 1], mask logits [N, 1, 144, 144] or None)."""
        image = torch.sigmoid(self.decoder(z))
        logits = self.mask_decoder(z) if self.mask_decoder is not None else None
        return image, logits

    @staticmethod
    def compose(raw: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """out = m * x_hat + (1 - m) * x: keep the input background. mask [N, 1, H, W] in [0, 1]."""
        return mask * raw + (1.0 - mask) * x

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None):
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> MaskedVAEOutput:
        """Inference path: z = mu (no sampling), background from the input through the predicted mask.

        x [N, 3, 144, 144] in [0, 1]. Without a mask decoder `image` is the raw decoder output.
        """
        mu, _ = self.encode(x)
        raw, logits = self.decode(mu)
        if logits is None:
            return MaskedVAEOutput(raw, raw, None)
        mask = torch.sigmoid(logits)
        return MaskedVAEOutput(self.compose(raw, x, mask), raw, mask)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """n faces from the prior z ~ N(0, I): (image [n, 3, 144, 144] in [0, 1], mask logits or None)."""
        p = next(self.parameters())
        z = torch.randn(n, self.config["latent_dim"], generator=generator, device=p.device, dtype=p.dtype)
        return self.decode(z)
