"""VAE face reconstruction of a photo: detect -> align (144 / 128) -> VAE -> reconstruction pasted back.

Two models (issue 8), both RGB in [0, 1] on the canonical aligned crop (core.face.align_face):
- "masked-vae" (core/models/masked_vae.py, Toledo & Antonelo): 144 px; a second decoder predicts the
  face mask, through which the reconstruction keeps the input background (the paper's inference path);
- "multistage-vae" (core/models/multistage_vae.py, Cai et al.): 128 px; a coarse image refined by a
  residual network.

Reconstructions decode z = mu (no sampling). Samples draw z ~ N(0, I) from a CPU torch.Generator, so one
seed gives the same face on any device. Interpolation decodes (1 - t) mu_a + t mu_b; for the masked VAE
it shows the raw decoder output (two photos have no common background to composite on).
Models load lazily, once per process, through core.loading.load_model.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .. import face as F
from ..errors import FaceLabError
from ..imageio import load_image
from ..metrics import psnr as face_psnr  # PSNR over the face pixels: face_psnr(a, b, mask)

MODEL_SIZE = {"masked-vae": 144, "multistage-vae": 128}  # crop side each model was trained on
MODELS = tuple(MODEL_SIZE)


@dataclass
class VAEResult:
    model: str                       # "masked-vae" or "multistage-vae"
    crop: np.ndarray                 # [S, S, 3] uint8 aligned input (S = 144 / 128)
    reconstruction: np.ndarray       # [S, S, 3] uint8: masked = decoder face on the input background through
    #                                  the predicted mask; multistage = the refined image
    mask: np.ndarray | None          # [S, S] float32 face probability (masked-vae), None for multistage
    raw: np.ndarray | None           # [S, S, 3] uint8 decoder output before compositing (masked-vae)
    coarse: np.ndarray | None        # [S, S, 3] uint8 first stage (multistage-vae)
    refined: np.ndarray | None       # [S, S, 3] uint8 second stage (multistage-vae)
    pasted: np.ndarray               # [H, W, 3] uint8 the photo with the reconstruction pasted back
    face: F.Face
    matrix: np.ndarray               # [2, 3] photo -> crop


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_model(model: str) -> str:
    if model not in MODEL_SIZE:
        raise FaceLabError(f"Unknown VAE model {model!r}; choose one of: {', '.join(MODELS)}.")
    return model


def load_model(model: str):
    """The model in eval mode, built once per process and shared (load_model caches it)."""
    from ..loading import load_model

    return load_model(check_model(model), device=device())


def to_tensor(crop: np.ndarray) -> torch.Tensor:
    """[S, S, 3] uint8 -> [1, 3, S, S] float in [0, 1] on the model device."""
    return torch.from_numpy(np.ascontiguousarray(crop)).to(device()).permute(2, 0, 1)[None].float() / 255.0


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """[N, 3, S, S] in [0, 1] -> [N, S, S, 3] uint8."""
    return (x.float().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def align(image: np.ndarray, model: str, face_index: int = 0) -> tuple[F.Face, F.AlignedFace]:
    face = F.pick_face(F.detect_faces(image), face_index)
    return face, F.align_face(image, face, MODEL_SIZE[check_model(model)])


def paste_mask(mask: np.ndarray) -> np.ndarray:
    """Predicted face probability [S, S] -> feathered paste mask [S, S] in [0, 1].

    Blurred so the seam is soft, and faded out at the crop border (core.face.default_paste_mask) so that
    hair reaching the border does not leave a hard edge in the photo.
    """
    size = mask.shape[0]
    k = size // 24 * 2 + 1  # 13 px at 144
    soft = cv2.GaussianBlur(mask.astype(np.float32), (k, k), 0)
    return np.clip(soft, 0.0, 1.0) * F.default_paste_mask(size)


@torch.no_grad()
def reconstruct_crop(crop: np.ndarray, model: str) -> dict[str, np.ndarray | None]:
    """One aligned crop [S, S, 3] uint8 -> reconstruction, mask, raw, coarse, refined (see VAEResult)."""
    net = load_model(model)
    x = to_tensor(crop)  # [1, 3, S, S] in [0, 1]
    if model == "masked-vae":
        out = net.reconstruct(x)
        mask = out.mask[0, 0].float().cpu().numpy() if out.mask is not None else None
        return dict(reconstruction=to_uint8(out.image)[0], mask=mask, raw=to_uint8(out.raw)[0],
                    coarse=None, refined=None)
    coarse, refined = net.reconstruct(x)
    refined_u8 = to_uint8(refined)[0]
    return dict(reconstruction=refined_u8, mask=None, raw=None, coarse=to_uint8(coarse)[0], refined=refined_u8)


def reconstruct_photo(source, model: str = "masked-vae", face_index: int = 0) -> VAEResult:
    """Any photo -> VAE reconstruction of face `face_index` (0 = largest), also pasted back into the photo."""
    check_model(model)
    image = load_image(source)
    face, al = align(image, model, face_index)
    out = reconstruct_crop(al.image, model)
    mask = paste_mask(out["mask"]) if out["mask"] is not None else None  # None: paste_back's default mask
    pasted = F.paste_back(image, out["reconstruction"], al.matrix, mask)
    return VAEResult(model=model, crop=al.image, pasted=pasted, face=face, matrix=al.matrix, **out)


@torch.no_grad()
def decode_latent(z: torch.Tensor | np.ndarray, model: str) -> np.ndarray:
    """Latents [N, D] -> images [N, S, S, 3] uint8 (masked: raw decoder output; multistage: refined)."""
    net = load_model(model)
    p = next(net.parameters())
    z = torch.as_tensor(z).to(device=p.device, dtype=p.dtype)
    if model == "masked-vae":
        image, _ = net.decode(z)
    else:
        _, image = net.decode(z)
    return to_uint8(image)


@torch.no_grad()
def encode_photo(source, model: str = "masked-vae", face_index: int = 0) -> np.ndarray:
    """Photo -> mu [D] float32 of face `face_index` (the posterior mean of its aligned crop)."""
    _, al = align(load_image(source), model, face_index)
    mu, _ = load_model(model).encode(to_tensor(al.image))  # [1, D]
    return mu[0].float().cpu().numpy()


def sample(model: str = "masked-vae", seed: int = 0, n: int = 1) -> np.ndarray:
    """n faces from the prior, [n, S, S, 3] uint8; the same seed gives the same faces (on any device)."""
    if n < 1:
        raise FaceLabError("Ask for at least one sample.")
    net = load_model(model)
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    z = torch.randn(n, net.config["latent_dim"], generator=generator)  # [n, D], drawn on the CPU
    return decode_latent(z, model)


def interpolate_latents(mu_a: np.ndarray, mu_b: np.ndarray, t: float, model: str) -> np.ndarray:
    """[S, S, 3] uint8 decoded from (1 - t) mu_a + t mu_b (t = 0: photo a, t = 1: photo b)."""
    if not np.isfinite(t):
        raise FaceLabError("t must be a number.")
    z = (1.0 - float(t)) * np.asarray(mu_a, np.float32) + float(t) * np.asarray(mu_b, np.float32)
    return decode_latent(z[None], model)[0]


def interpolate(photo_a, photo_b, t: float, model: str = "masked-vae", face_index: int = 0) -> np.ndarray:
    """Decode the blend of two photos' latent means: [S, S, 3] uint8."""
    return interpolate_latents(encode_photo(photo_a, model, face_index), encode_photo(photo_b, model, face_index),
                               t, model)


__all__ = ["MODELS", "MODEL_SIZE", "VAEResult", "decode_latent", "encode_photo", "face_psnr", "interpolate",
           "interpolate_latents", "reconstruct_crop", "reconstruct_photo", "sample"]
